/**
 * Entry point: `node dist/main.js [flags]` (or `npm start`). Parses the configuration, starts the
 * operator, and drains on SIGTERM.
 */
import { ConfigError, loadConfig, usage } from './config.ts';
import { onSignals } from './controller/index.ts';
import { createLogger } from './observability/logger.ts';
import { createOperator } from './operator.ts';

let config;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(2);
}
if (!config) {
  process.stdout.write(usage());
  process.exit(0);
}

const log = createLogger(config.logLevel);
const operator = createOperator(config, log);
onSignals({ stop: () => operator.stop() }, log);
try {
  await operator.start();
  log.info({ namespaces: config.namespaces.length > 0 ? config.namespaces : 'all', workers: config.workers }, 'operator started');
} catch (error) {
  log.error({ err: error }, 'operator failed to start');
  process.exit(1);
}
