/**
 * The node emulator's public API; kept at this path for existing imports. The emulator itself
 * lives in ./node-emulator/ (see its index.ts for what it emulates and what it does not).
 */
export * from './node-emulator/index.ts';
