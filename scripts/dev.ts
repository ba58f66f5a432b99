/**
 * `npm run dev [-- --namespace NS] [--state-dir DIR] [--no-demo]`: a local control plane, the node
 * emulator, the operator and a demo run, in one terminal (see scripts/dev/stack.ts). Ctrl-C stops
 * everything. Tool commands run as local processes on this machine.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../test/harness/control-plane.ts';
import { runDev } from './dev/stack.ts';

const HELP = `npm run dev [-- flags]: the local stack for trying agentrun-operator.

Starts the local control plane (built first with scripts/cluster/install.sh when missing), the
node emulator, the operator (restarted if it dies) and, without ANTHROPIC_API_KEY, a scripted
stand-in for the Messages API; then applies deploy/examples/demo.yaml. Ctrl-C stops it all.

TOOL COMMANDS RUN AS LOCAL PROCESSES ON THIS MACHINE (no container runtime, no isolation).

Flags:
  --namespace NS     namespace the demo runs in and the operator watches (default: default)
  --state-dir DIR    cluster state, kubeconfig and logs (default: .agentrun/dev; env AGENTRUN_DEV_DIR)
  --no-demo          do not apply the demo run
  --tracing          also run Jaeger v2 (scripts/cluster/jaeger.sh) and export run traces to it
  -h, --help         this help

Environment:
  ANTHROPIC_API_KEY  use the real Messages API (stored in Secret anthropic, key api-key)
`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      namespace: { type: 'string', default: 'default' },
      'state-dir': { type: 'string' },
      'no-demo': { type: 'boolean', default: false },
      tracing: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${HELP}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(values.namespace)) {
  process.stderr.write(`--namespace ${values.namespace}: must be a namespace name (lowercase letters, digits and "-")\n`);
  process.exit(2);
}

const code = await runDev({
  stateDir: values['state-dir'] ?? process.env.AGENTRUN_DEV_DIR ?? join(repoRoot, '.agentrun', 'dev'),
  namespace: values.namespace,
  demo: !values['no-demo'],
  tracing: values.tracing,
  anthropicApiKey: process.env.ANTHROPIC_API_KEY || undefined,
  out: (line) => { process.stdout.write(`${line}\n`); },
});
process.exit(code);
