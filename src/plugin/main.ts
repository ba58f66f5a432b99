/**
 * Entry point of the `kubectl-agentrun` executable (bin/kubectl-agentrun imports this; the single
 * executable, scripts/build-plugin.ts, bundles it as CommonJS, hence no top-level await).
 */
import { runPlugin } from './cli.ts';

// `kubectl agentrun transcript x | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

void runPlugin({
  argv: process.argv.slice(2),
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
}).then((code) => {
  process.exitCode = code;
});
