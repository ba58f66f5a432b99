/**
 * The logging surface the controller runtime needs. pino's Logger satisfies it, so callers pass
 * their pino instance (or a child of it); tests can pass a spy or {@link silentLogger}.
 *
 * Messages are constant strings so log queries can match on them; everything that varies from line
 * to line (keys, durations, the error under `err`, which pino serialises) goes into the fields.
 */

/**
 * A minimal, pino-compatible structured logger.
 *
 * Declared with method syntax because pino's methods use `this`: the unbound-method lint rule then
 * flags `const { info } = log`.
 */
export interface Logger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const discard = (): void => undefined;

/** A logger that drops every line. */
export const silentLogger: Logger = { debug: discard, info: discard, warn: discard, error: discard };
