/**
 * The real nodes' public API; kept at this path for existing imports. The code lives in
 * ./real-node/ (see its index.ts for what a real node touches on this machine).
 */
export * from './real-node/index.ts';
