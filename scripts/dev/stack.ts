/**
 * `npm run dev`: the whole stack on this machine, in one terminal.
 *
 *   control plane   etcd + kube-apiserver + kube-controller-manager (+ kube-scheduler with a real
 *                   node; built once by scripts/cluster/install.sh), state in <state-dir>/cluster
 *   node            as root on Linux: a REAL NODE (kubelet + containerd; tool pods run in
 *                   containers, test/harness/real-node.ts); elsewhere, or with
 *                   AGENTRUN_NODE=emulator: the node emulator, a stand-in kubelet that runs tool
 *                   pods' commands as LOCAL PROCESSES
 *   model           ANTHROPIC_API_KEY set: the real Messages API (Secret `anthropic` made from it);
 *                   unset: a scripted stand-in that plays the demo agent (demo-agent.ts)
 *   operator        `node src/main.ts` as a child process, restarted when it dies
 *   demo            deploy/examples/demo.yaml applied to the dev namespace
 *
 * Ctrl-C (SIGINT) or SIGTERM stops the operator (drain), the node, the model stand-in and the
 * control plane, in that order, and deletes the cluster state (a real node's teardown puts back
 * everything it changed on this machine); logs (the control plane's and the node's too) stay in
 * <state-dir>/logs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import {
  ControlPlaneError, binDir, binary, freePort, kubectl, repoRoot, writeKubeconfig,
  type ClusterInfo,
} from '../../test/harness/control-plane.ts';
import { startLocalCluster, stopLocalCluster } from '../../test/harness/local-cluster.ts';
import { startMockModelServer, type MockModelServer } from '../../test/harness/mock-model-server.ts';
import { NodeEmulator } from '../../test/harness/node-emulator.ts';
import { chooseNodeMode, type NodeMode } from '../../test/harness/real-node.ts';
import { DEMO_SHELL_COMMAND, demoAgent } from './demo-agent.ts';
import { withModelBaseURL } from './manifests.ts';
import { OperatorSupervisor } from './operator.ts';
import { startJaeger, type Jaeger } from '../../test/harness/jaeger.ts';
import { RunProgress } from './run-progress.ts';

export interface DevOptions {
  /** Everything dev mode writes: cluster state, kubeconfig, logs. */
  readonly stateDir: string;
  /** The namespace the emulator runs pods of, the operator watches, and the demo goes into. */
  readonly namespace: string;
  /** Apply deploy/examples/demo.yaml once the stack is up. */
  readonly demo: boolean;
  /** Run Jaeger v2 and export run traces to it. */
  readonly tracing?: boolean;
  /** Used instead of the stand-in when set. */
  readonly anthropicApiKey: string | undefined;
  readonly out: (line: string) => void;
}

export const DEMO_FILE = join(repoRoot, 'deploy', 'examples', 'demo.yaml');
export const ENDPOINT_FILE = join(repoRoot, 'deploy', 'examples', 'model-endpoint.yaml');
/** The key the stand-in accepts; the Secret `anthropic` holds it so the examples work unchanged. */
export const STANDIN_API_KEY = 'sk-ant-dev-standin-not-a-real-key';
const NODE_NAME = 'dev-node';

/** The first signal asks for a clean stop; a second one while stopping forces it. */
class StopRequest {
  requested = false;
  private resolveRequested: () => void = () => undefined;
  readonly wait = new Promise<void>((resolve) => { this.resolveRequested = resolve; });
  request(): void { this.requested = true; this.resolveRequested(); }
}

class Aborted extends Error {
  override name = 'Aborted';
}

/** What is running; stop() tears down whatever is there. */
class Stack {
  cluster: ClusterInfo | undefined;
  clusterDir: string;
  emulator: NodeEmulator | undefined;
  nodeMode: NodeMode | undefined;
  model: MockModelServer | undefined;
  operator: OperatorSupervisor | undefined;
  jaeger: Jaeger | undefined;
  progress: RunProgress | undefined;
  installer: ReturnType<typeof spawn> | undefined;
  /** Set once no other dev stack uses the state dir: only then may shutdown() clean it. */
  ownsStateDir = false;
  constructor(clusterDir: string) { this.clusterDir = clusterDir; }
}

/** Runs dev mode until a signal; returns the process exit code. */
export async function runDev(options: DevOptions): Promise<number> {
  const { out } = options;
  const stop = new StopRequest();
  const stack = new Stack(join(options.stateDir, 'cluster'));
  let forced = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!stop.requested) {
      out(`\n[dev] ${signal}: stopping the operator, the node, the model and the control plane (${signal} again to force)…`);
      stop.request();
      stack.installer?.kill('SIGTERM');
      return;
    }
    if (forced) return;
    forced = true;
    out(`[dev] ${signal} again: killing everything now`);
    void forceKill(stack).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let code = 0;
  try {
    await start(options, stack, stop);
    await stop.wait;
  } catch (error) {
    if (!(error instanceof Aborted)) {
      out(`[dev] error: ${error instanceof Error ? error.message : String(error)}`);
      code = 1;
    }
  }
  await shutdown(options, stack);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code;
}

async function start(options: DevOptions, stack: Stack, stop: StopRequest): Promise<void> {
  const { out, stateDir, namespace } = options;
  const checkpoint = (): void => { if (stop.requested) throw new Aborted(); };
  const logs = join(stateDir, 'logs');
  const rel = (p: string) => (p.startsWith(`${process.cwd()}/`) ? relative(process.cwd(), p) : p);
  const node = chooseNodeMode();
  banner(out, node.mode, node.why);

  await ensureBinaries(out, stack);
  checkpoint();
  await mkdir(logs, { recursive: true });
  await refuseOrCleanUpPrevious(stateDir, stack.clusterDir, out);
  stack.ownsStateDir = true;
  // Each start begins fresh logs.
  await rm(join(logs, 'control-plane'), { recursive: true, force: true });
  await Promise.all(['operator.log', 'node-emulator.log', 'model.log'].map((f) => writeFile(join(logs, f), '')));
  await writeFile(join(stateDir, 'dev.json'), JSON.stringify({ pid: process.pid }, null, 2));

  out(node.mode === 'real'
    ? '[dev] control plane: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a real node (kubelet + containerd)…'
    : '[dev] control plane: starting etcd, kube-apiserver, kube-controller-manager…');
  const t0 = Date.now();
  // Detached: Ctrl-C reaches this process only, which stops the control plane last.
  stack.nodeMode = node.mode;
  stack.cluster = await startLocalCluster({ stateDir: stack.clusterDir, detached: true, unsafeNoFsync: true, nodeMode: node.mode });
  out(`[dev] control plane: ready at ${stack.cluster.server} in ${seconds(Date.now() - t0)} (CRDs and approval policies installed; logs ${rel(join(stack.clusterDir, 'logs'))})`);
  checkpoint();
  const admin = stack.cluster.kubeconfig;
  if (namespace !== 'default') await createNamespace(admin, namespace);
  const pki = join(stack.clusterDir, 'pki');
  const kubeconfig = await writeKubeconfig(join(stateDir, 'kubeconfig'), stack.cluster,
    { name: 'admin', cert: join(pki, 'admin.crt'), key: join(pki, 'admin.key') }, namespace);

  if (node.mode === 'real') {
    const nodes = stack.cluster.nodes;
    out(`[dev] real node: ${nodes?.names.join(', ') ?? '?'} is Ready (kubelet + containerd); tool pods run in CONTAINERS, images from the local cache (logs ${rel(join(stack.clusterDir, 'logs'))})`);
  } else {
    stack.emulator = new NodeEmulator({
      kubeconfig: admin, caCert: stack.cluster.caCert, caKey: stack.cluster.caKey, nodeName: NODE_NAME, namespaces: [namespace],
      log: jsonLines(join(logs, 'node-emulator.log')),
    });
    await stack.emulator.start();
    out(`[dev] node emulator: node ${NODE_NAME} is Ready; it runs the pods of namespace ${namespace} as LOCAL PROCESSES (log ${rel(join(logs, 'node-emulator.log'))})`);
  }
  checkpoint();

  let baseURL: string | undefined;
  if (options.anthropicApiKey) {
    await createSecret(admin, namespace, options.anthropicApiKey);
    out(`[dev] model: the real Anthropic Messages API (ANTHROPIC_API_KEY is set; it is in Secret ${namespace}/anthropic, key api-key)`);
  } else {
    const modelLog = join(logs, 'model.log');
    stack.model = await startMockModelServer({
      apiKeys: [STANDIN_API_KEY],
      latencyMs: 300,
      onResponse: (r) => { void appendFile(modelLog, `${JSON.stringify({ time: new Date().toISOString(), status: r.status, turn: r.turnIndex, requestId: r.requestId })}\n`); },
    });
    stack.model.defaultScript(demoAgent);
    baseURL = stack.model.url;
    await createSecret(admin, namespace, STANDIN_API_KEY);
    out(`[dev] model: ANTHROPIC_API_KEY is not set, so a SCRIPTED STAND-IN (not a model) answers at ${baseURL}: it plays the demo agent only (log ${rel(modelLog)})`);
  }
  checkpoint();

  const metricsPort = await freePort();
  const operatorLog = join(logs, 'operator.log');
  if (options.tracing) {
    stack.jaeger = await startJaeger();
    out(`[dev] tracing: Jaeger v2 (memory storage) takes OTLP at ${stack.jaeger.otlpUrl}; traces at ${stack.jaeger.queryUrl}/api/v3/traces/<status.trace.traceId> (UI ${stack.jaeger.queryUrl}: a placeholder page when Jaeger is built from the module proxy)`);
  }
  const tracing = stack.jaeger ? { extraArgs: ['--tracing=true'], env: { OTEL_EXPORTER_OTLP_ENDPOINT: stack.jaeger.otlpUrl } } : {};
  stack.operator = new OperatorSupervisor({ kubeconfig: admin, namespace, metricsPort, logFile: operatorLog, say: (line) => { out(`[dev] ${line}`); }, ...tracing });
  const t1 = Date.now();
  const pid = await stack.operator.start();
  out(`[dev] operator: pid ${pid}, reconciling namespace ${namespace} (ready in ${seconds(Date.now() - t1)}; log ${rel(operatorLog)}; metrics http://127.0.0.1:${metricsPort}/metrics)`);
  checkpoint();

  const endpoint = await readFile(ENDPOINT_FILE, 'utf8');
  const endpointOut = await applyManifest(admin, namespace, baseURL ? withModelBaseURL(endpoint, baseURL) : endpoint);
  out(`[dev] model endpoint: applied ${rel(ENDPOINT_FILE)}${baseURL ? ' with spec.baseURL set to the stand-in (the only change)' : ''}: ${endpointOut.trim()}`);
  if (options.demo) {
    const stdout = await applyManifest(admin, namespace, await readFile(DEMO_FILE, 'utf8'));
    out(`[dev] demo: applied ${rel(DEMO_FILE)}: ${stdout.trim().split('\n').join(', ')}`);
  }
  await writeFile(join(stateDir, 'dev.json'), JSON.stringify({
    pid: process.pid, operatorPid: pid, cluster: stack.cluster.pids, kubeconfig, namespace, model: baseURL ?? 'https://api.anthropic.com',
  }, null, 2));
  checkpoint();

  stack.progress = new RunProgress(kubeconfig, namespace, (line) => { out(`[dev] ${line}`); });
  stack.progress.start();
  printNextSteps(out, { kubeconfig, namespace, pid, demo: options.demo, standIn: baseURL !== undefined, node: node.mode });
}

function banner(out: (line: string) => void, mode: NodeMode, why: string): void {
  const user = userInfo().username;
  const lines = mode === 'real' ? [
    'agentrun-operator dev mode',
    '',
    `TOOL PODS RUN IN CONTAINERS on a real node on this machine (${why}):`,
    'a kubelet and containerd with runc, restricted securityContext, images from the',
    'local cache built by npm run cluster:install (busybox:1.37, curlimages/curl:8.11.1',
    'stand-in). Pods reach only their bridge and the node IP; nothing leaves the machine.',
  ] : [
    'agentrun-operator dev mode',
    '',
    `TOOL COMMANDS RUN AS LOCAL PROCESSES ON THIS MACHINE, as user ${user}, with no`,
    `container and no isolation (${why}): the node`,
    'emulator runs each tool pod\'s command + args directly and ignores the image.',
    'Only apply AgentRuns whose tool commands you would run in your own shell.',
  ];
  const width = Math.max(...lines.map((l) => l.length));
  out(`┏${'━'.repeat(width + 2)}┓`);
  for (const line of lines) out(`┃ ${line.padEnd(width)} ┃`);
  out(`┗${'━'.repeat(width + 2)}┛`);
}

function printNextSteps(out: (line: string) => void, s: { kubeconfig: string; namespace: string; pid: number; demo: boolean; standIn: boolean; node: NodeMode }): void {
  const path = [join(repoRoot, 'bin'), binDir(), dirname(process.execPath)].join(':');
  const lines = [
    '',
    `Ready. In another terminal (the kubeconfig's context namespace is ${s.namespace}):`,
    '',
    `  export KUBECONFIG=${s.kubeconfig}`,
    `  export PATH="${path}:$PATH"   # kubectl, kubectl agentrun, Node.js 24`,
    '',
  ];
  const cmd = (command: string, what: string) => `  ${command.padEnd(40)} # ${what}`;
  if (s.demo) {
    lines.push(
      cmd('kubectl get agentruns -w', 'watch the demo run: Running, AwaitingApproval, Succeeded'),
      cmd('kubectl agentrun describe demo', 'steps, pods, tokens, and the step that waits for you'),
      cmd('kubectl agentrun approve demo', `let run_shell run \`${DEMO_SHELL_COMMAND}\` (${s.node === 'real' ? 'in a container' : 'a local process!'})`),
      cmd('kubectl agentrun transcript demo', 'the conversation, rebuilt from the journal'),
    );
  }
  lines.push(cmd(`kill -9 ${s.pid}`, 'kill the operator mid-run: dev mode restarts it and the run resumes'));
  if (s.demo) lines.push(cmd('kubectl describe agentrun demo', 'conditions and one Event per transition'));
  lines.push('');
  if (s.standIn) {
    lines.push('The model is a scripted stand-in that only plays the demo. The other examples in deploy/examples/');
    lines.push('need a real model: restart with ANTHROPIC_API_KEY set, then kubectl apply -f deploy/examples/<file>.');
  } else {
    lines.push('The model is the real Anthropic API: every example in deploy/examples/ works, e.g.');
    lines.push('  kubectl apply -f deploy/examples/shell-with-approval.yaml');
  }
  lines.push(s.node === 'real'
    ? 'Tool pods run in containers on the real node. Ctrl-C stops everything, deletes the cluster state and undoes the node\'s changes to this machine.'
    : 'Tool commands run as local processes on this machine. Ctrl-C stops everything and deletes the cluster state.', '');
  for (const line of lines) out(line);
}

async function ensureBinaries(out: (line: string) => void, stack: Stack): Promise<void> {
  try {
    for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl'] as const) binary(b);
    return;
  } catch (error) {
    if (!(error instanceof ControlPlaneError)) throw error;
  }
  out('[dev] the local control plane is not built yet: running scripts/cluster/install.sh (builds etcd, kube-apiserver,');
  out('[dev] kube-controller-manager, kubectl and helm from the Go module proxy; several minutes cold on 2 cores, cached afterwards)');
  const child = spawn('bash', [join(repoRoot, 'scripts', 'cluster', 'install.sh')], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  stack.installer = child;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, signal) => { resolve(signal ? null : c); });
  });
  stack.installer = undefined;
  if (code !== 0) throw new Error(`scripts/cluster/install.sh failed (${code === null ? 'stopped' : `exit code ${code}`}); fix what it printed and run npm run dev again`);
}

interface DevState { pid?: number; operatorPid?: number }

/** One dev stack per state dir: refuse when another is running, clean up after one that crashed. */
async function refuseOrCleanUpPrevious(stateDir: string, clusterDir: string, out: (line: string) => void): Promise<void> {
  const file = join(stateDir, 'dev.json');
  let previous: DevState = {};
  try { previous = JSON.parse(await readFile(file, 'utf8')) as DevState; } catch { /* none */ }
  if (previous.pid && previous.pid !== process.pid && alive(previous.pid)) {
    throw new Error(`another npm run dev (pid ${previous.pid}) uses ${stateDir}; stop it first, or pass --state-dir DIR`);
  }
  if (previous.operatorPid && alive(previous.operatorPid) && await isOperator(previous.operatorPid)) process.kill(previous.operatorPid, 'SIGKILL');
  if (existsSync(clusterDir)) {
    out(`[dev] removing the state a previous run left in ${clusterDir}`);
    await stopLocalCluster(clusterDir);
  }
}

async function shutdown(options: DevOptions, stack: Stack): Promise<void> {
  const { out, stateDir } = options;
  if (!stack.ownsStateDir) { out('[dev] stopped; nothing was started'); return; }
  const stopped: string[] = [];
  const step = async (what: string, fn: () => Promise<void>) => {
    try { await fn(); stopped.push(what); } catch (error) { out(`[dev] stopping ${what} failed: ${error instanceof Error ? error.message : String(error)}`); }
  };
  stack.progress?.stop();
  if (stack.operator) await step('operator', () => stack.operator?.stop() ?? Promise.resolve());
  if (stack.jaeger) await step('jaeger', () => stack.jaeger?.stop() ?? Promise.resolve());
  if (stack.emulator) await step('node emulator', () => stack.emulator?.stop() ?? Promise.resolve());
  if (stack.model) await step('model stand-in', () => stack.model?.close() ?? Promise.resolve());
  if (stack.cluster || existsSync(stack.clusterDir)) {
    await step(stack.nodeMode === 'real' ? 'real node, control plane' : 'control plane', async () => {
      await stopLocalCluster(stack.clusterDir, { keepState: true });
      // Its logs join the others (they explain a control plane that did not start); the rest goes.
      await cp(join(stack.clusterDir, 'logs'), join(stateDir, 'logs', 'control-plane'), { recursive: true, force: true }).catch(() => undefined);
      await rm(stack.clusterDir, { recursive: true, force: true });
    });
  }
  await rm(join(stateDir, 'kubeconfig'), { force: true });
  await rm(join(stateDir, 'dev.json'), { force: true });
  out(`[dev] stopped${stopped.length ? `: ${stopped.join(', ')}` : ''}; cluster state deleted; logs kept in ${join(stateDir, 'logs')}`);
}

async function forceKill(stack: Stack): Promise<void> {
  stack.installer?.kill('SIGKILL');
  stack.operator?.kill();
  void stack.jaeger?.stop().catch(() => undefined);
  for (const pid of Object.values(stack.cluster?.pids ?? {})) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  await stack.emulator?.stop().catch(() => undefined);
  // A real node's processes are stopped by pid and this machine restored even now.
  await stopLocalCluster(stack.clusterDir, { keepState: true }).catch(() => undefined);
}

async function createNamespace(kubeconfig: string, namespace: string): Promise<void> {
  await kubectl(kubeconfig, ['create', 'namespace', namespace]);
  // Pods cannot be created before the namespace's default ServiceAccount exists.
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    try { await kubectl(kubeconfig, ['get', 'serviceaccount', 'default', '-n', namespace]); return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`namespace ${namespace}: its default ServiceAccount never appeared`);
}

/** `kubectl create` from stdin: the key never appears in argv or in a last-applied annotation. */
async function createSecret(kubeconfig: string, namespace: string, apiKey: string): Promise<void> {
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'anthropic', namespace }, type: 'Opaque', stringData: { 'api-key': apiKey } };
  await kubectl(kubeconfig, ['create', '-f', '-'], JSON.stringify(secret));
}

/**
 * `kubectl apply` from stdin. Right after the CRDs are Established the apiserver may still answer
 * 503 "Resource kind … not found. There can be a delay …" for a short while: that is retried.
 */
async function applyManifest(kubeconfig: string, namespace: string, manifest: string): Promise<string> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      return (await kubectl(kubeconfig, ['apply', '-n', namespace, '-f', '-'], manifest)).stdout;
    } catch (error) {
      const notYet = /ServiceUnavailable|There can be a delay|could not find the requested resource/.test(String(error));
      if (!notYet || Date.now() > end) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function jsonLines(path: string) {
  return (message: string, fields?: Record<string, unknown>): void => {
    void appendFile(path, `${JSON.stringify({ time: new Date().toISOString(), msg: message, ...fields })}\n`);
  };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function isOperator(pid: number): Promise<boolean> {
  try { return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('src/main.ts'); } catch { return false; }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

