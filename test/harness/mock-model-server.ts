/**
 * The mock model server's public API; kept at this path for existing imports. The server itself
 * lives in ./mock-model/ (see its index.ts for what it emulates and what it does not).
 */
export * from './mock-model/index.ts';
