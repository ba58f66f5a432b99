/**
 * Entry point: `node dist/main.js [flags]` (or `npm start`). Parses the configuration, starts the
 * operator, and drains on SIGTERM.
 */
import { ConfigError, loadConfig, usage } from './config.ts';
import { onSignals } from './controller/index.ts';
import { createLogger } from './observability/logger.ts';
import { createRunTracer } from './observability/tracing/index.ts';
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
let tracer;
try {
  tracer = await createRunTracer({ enabled: config.tracing, content: config.traceContent });
} catch (error) {
  process.stderr.write(`tracing: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}
const operator = createOperator(config, log, undefined, {
  tracer,
  // A replaced leader must not act on what it remembers: exit at once, without draining, and let
  // Kubernetes restart the container (it comes back as a standby with fresh caches).
  onLostLeadership: (reason) => {
    log.error({ reason }, 'leadership lost; exiting so the process restarts with a clean memory');
    process.exit(1);
  },
});
onSignals({ stop: () => operator.stop() }, log);
try {
  await operator.start();
  log.info({
    namespaces: config.namespaces.length > 0 ? config.namespaces : 'all',
    workers: config.workers,
    metricsPort: operator.metricsPort() ?? null,
    tracing: config.tracing,
    leaderElection: operator.elector
      ? { identity: operator.elector.identity, leader: operator.elector.isLeader() }
      : false,
  }, 'operator started');
} catch (error) {
  log.error({ err: error }, 'operator failed to start');
  process.exit(1);
}
