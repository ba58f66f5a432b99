/** The generic controller runtime: work queue, informer, controller, manager. Knows nothing about agents. */
export * from './clock.ts';
export * from './controller.ts';
export * from './errors.ts';
export * from './informer.ts';
export * from './keys.ts';
export * from './logger.ts';
export * from './manager.ts';
export * from './workqueue.ts';
export * from './leader-election.ts';
