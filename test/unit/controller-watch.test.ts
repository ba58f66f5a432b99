/** Controller.watch: an informer's changes become keys in the controller's queue, through toKeys. */
import { describe, expect, it } from 'vitest';
import { Controller, type InformerEventType, type Logger } from '../../src/controller/index.ts';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

interface Obj { metadata: { namespace: string; name: string; owner?: string } }

/** The part of an Informer that watch() uses, driven by the test. */
function fakeInformer() {
  const handlers: ((type: InformerEventType, obj: Obj) => void)[] = [];
  return {
    addHandler: (h: (type: InformerEventType, obj: Obj) => void) => { handlers.push(h); },
    emit: (type: InformerEventType, obj: Obj) => { for (const h of handlers) h(type, obj); },
  };
}

describe('Controller.watch', () => {
  it('reconciles the keys each change maps to: the owner of a pod, every run of a namespace, none at all', async () => {
    const reconciled: string[] = [];
    const controller = new Controller({ name: 't', log: quiet, reconcile: (key) => { reconciled.push(key); return Promise.resolve(); } });
    const pods = fakeInformer();
    const tools = fakeInformer();
    controller.watch(pods, (pod) => (pod.metadata.owner ? [`${pod.metadata.namespace}/${pod.metadata.owner}`] : []));
    controller.watch(tools, (tool, type) => (type === 'delete' ? [] : [`${tool.metadata.namespace}/run-a`, `${tool.metadata.namespace}/run-b`]));
    pods.emit('add', { metadata: { namespace: 'ns', name: 'p1', owner: 'run-a' } });
    pods.emit('update', { metadata: { namespace: 'ns', name: 'p2' } });
    tools.emit('add', { metadata: { namespace: 'ns', name: 'web' } });
    tools.emit('delete', { metadata: { namespace: 'ns', name: 'web' } });
    controller.start();
    await expect.poll(() => [...reconciled].sort()).toEqual(['ns/run-a', 'ns/run-b']);
    await controller.stop();
  });
});
