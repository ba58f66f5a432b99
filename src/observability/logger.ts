/** The operator's structured logger (pino): JSON lines, secrets redacted by path. */
import { pino, type Logger as PinoLogger } from 'pino';

export function createLogger(level: string): PinoLogger {
  return pino({
    level,
    base: { component: 'agentrun-operator' },
    // Defence in depth: nothing should log these, but if a request or Secret is logged whole, its
    // credentials are not.
    redact: {
      paths: ['apiKey', '*.apiKey', 'headers.authorization', '*.headers.authorization', 'headers["x-api-key"]', 'data', '*.data', 'stringData'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
