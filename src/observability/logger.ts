/** The operator's structured logger (pino): JSON lines, secrets redacted by path. */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/**
 * Fields that may hold credentials, at the top level and one level down (pino's redaction is by
 * path, `*` is one level). Nothing should log them; if a request, a kubeconfig user or a Secret
 * is logged whole by mistake, its credentials still are not.
 */
const SECRET_FIELDS = [
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
  'token',
  'bearerToken',
  'password',
  'secret',
  'clientKey',
  'client-key-data',
  'data',
  'stringData',
  'headers.authorization',
  'headers.Authorization',
  'headers["x-api-key"]',
  'headers.cookie',
];

/** Paths pino replaces with [Redacted]: every secret field at the top level and one level down. */
export const REDACTED_PATHS: readonly string[] = [...SECRET_FIELDS, ...SECRET_FIELDS.map((p) => `*.${p}`)];

/** Creates the operator's JSON logger at `level`, with secret fields redacted. */
export function createLogger(level: string, destination?: DestinationStream): PinoLogger {
  const options = {
    level,
    base: { component: 'agentrun-operator' },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
