/**
 * The floor under the step-overhead targets: the requests a step must make one after the other,
 * timed alone — no operator, no decision, nothing in between — on the same kind of control plane
 * the `overhead` and `mcp` scenarios use (etcd with fsync on, kube-apiserver with this project's
 * CRDs and admission policies, kube-controller-manager, the node emulator running the pods).
 * A step's measured overhead can only be above its floor, so a target below the floor cannot be
 * met by tuning the operator; only a different durable order could (core/execution-plan.ts).
 *
 *   model step = journal the answer (AgentRunJournal create) → create its tool pod
 *   tool step  = read the ended pod's log → journal the result
 *   MCP step   = tools/call (server-everything's echo, session open) → journal the result
 *   status     = one AgentRun status update (what holds a run's worker between two decisions)
 *
 * Timed with the operator's own adapters (src/adapters/kube: client-node with one pooled
 * connection, objects built by src/core as in production), and the model step's two writes also
 * with a bare node:https keep-alive client: what the leanest client could take off. As root on
 * Linux the model and tool steps are measured again with the pods on a real node (kubelet +
 * containerd + runc), whose log read is what a real cluster's tool step pays.
 */
import * as k8s from '@kubernetes/client-node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, request } from 'node:https';
import { loadPooledKubeConfig } from '../src/adapters/kube/kubeconfig.ts';
import { KubeJournalStore } from '../src/adapters/kube/journal.ts';
import { KubePodClient } from '../src/adapters/kube/pods.ts';
import { journalObject } from '../src/core/journal.ts';
import { buildToolPod } from '../src/core/tool-pod.ts';
import type { PodTool } from '../src/api/journal-entry.ts';
import { modelEntry, modelStep, resolvedTools, response, runningStatus, spec, toolResultEntry, toolStep, toolUse,
  journaled } from '../test/harness/builders.ts';
import { agentSpec, startBenchEnv, workTool } from '../test/harness/fleet.ts';
import { startEverythingServer } from '../test/harness/mcp-server.ts';
import { sleep, summarize, type Summary } from '../test/harness/measure.ts';
import { chooseNodeMode, type NodeMode } from '../test/harness/real-node.ts';
import { ms, type Scenario, type Target } from './lib/scenario.ts';

interface Floors {
  /** Per sample: [journal create, pod create]. */
  readonly model: number[][];
  /** Per sample: [log read, journal create]. */
  readonly tool: number[][];
  /** The model step's two writes through a bare HTTPS client (emulator only). */
  readonly bareModel?: number[][];
  /** Per sample: [tools/call, journal create] (emulator only: no pod involved). */
  readonly mcp?: number[][];
  /** Per sample: [status update] (emulator only). */
  readonly status?: number[][];
}

export const floor: Scenario = async ({ quick, log }) => {
  const emu = await measure('emulator', quick ? 15 : 60, 10, true, log);
  // On a real kubelet a pod takes ~1 s to run: fewer turns, enough for a p50.
  const real = chooseNodeMode().mode === 'real' ? await measure('real', quick ? 5 : 15, 3, false, log) : undefined;
  const total = (rows: readonly number[][] = []) => summarize(rows.map((r) => r.reduce((a, b) => a + b, 0)));
  const part = (rows: readonly number[][] = [], k: number) => summarize(rows.map((r) => r[k] ?? 0));
  const row = (label: string, s: Summary): [string, string] => [label, `p50 ${ms(s.p50)}, p95 ${ms(s.p95)} (n=${s.n})`];
  const m = total(emu.model);
  const t = total(emu.tool);
  const c = total(emu.mcp);
  const realRows: [string, string][] = real ? [
    row('REAL NODE: model step floor (journal + tool pod create)', total(real.model)),
    row('REAL NODE: tool step floor (pod log read from kubelet + containerd, journal)', total(real.tool)),
    row('REAL NODE: … pod log read', part(real.tool, 0)),
  ] : [['REAL NODE', 'not measured: needs root on Linux (AGENTRUN_NODE=emulator or no root)']];
  return {
    scenario: 'floor',
    title: 'The floor under each step: its requests in order, nothing else (no operator; same control plane)',
    params: { samples: emu.model.length, realNodeSamples: real?.model.length ?? 0, node: 'emulator', realNode: real !== undefined,
      client: 'src/adapters/kube (client-node, pooled)' },
    table: [
      row('Model step floor: journal the answer + create its tool pod (target: overhead ≤ 10 ms)', m),
      row('… AgentRunJournal create', part(emu.model, 0)),
      row('… tool pod create', part(emu.model, 1)),
      row('… the same two writes with a bare node:https keep-alive client', total(emu.bareModel)),
      row('Tool step floor: read the pod log + journal the result (target: overhead ≤ 15 ms)', t),
      row('… pod log read (apiserver → kubelet)', part(emu.tool, 0)),
      row('… AgentRunJournal create', part(emu.tool, 1)),
      row('MCP step floor: echo call + journal the result (target: J1 → J2 ≤ 15 ms)', c),
      row('… tools/call (echo, session open)', part(emu.mcp, 0)),
      row('… AgentRunJournal create', part(emu.mcp, 1)),
      row('AgentRun status update, 10 steps (holds the run\'s worker between two decisions)', part(emu.status, 0)),
      ...realRows,
    ],
    // Not targets of their own: what the step targets are up against (the overhead can only be higher).
    targets: [
      floorOf('model-step overhead p50 ≤ 10 ms', 'journal + pod create', m, 10),
      floorOf('tool-step overhead p50 ≤ 15 ms', 'log read + journal', t, 15),
      floorOf('MCP tool step overhead p50 ≤ 15 ms', 'call + journal; J1 → J2 also sends the call', c, 15),
    ],
    notes: [
      'Each row is a lower bound for the matching overhead in the `overhead` and `mcp` scenarios: those add the decision, the watch that wakes the operator, and (MCP) sending the call.',
      'The control plane runs no operator here, so it also serves fewer watches than in those scenarios.',
      'REAL NODE rows: the same requests with the pods on a real kubelet + containerd + runc (one node of our own control plane).',
    ],
    data: { emulator: emu, real },
  };
};

/** Times a step's requests alone on one kind of node; `everything` adds the bare client, MCP and status series. */
async function measure(node: NodeMode, n: number, warmup: number, everything: boolean,
  log: (line: string) => void): Promise<Floors> {
  const env = await startBenchEnv({ label: `floor-${node}`, startOperator: false, log, node });
  const server = everything ? await startEverythingServer() : undefined;
  try {
    const runName = 'floor';
    const work = workTool(env.execLog, 'printf ok', env.signalsUrl);
    const created = await env.kube.createRun(env.namespace, runName, agentSpec('[floor]', env.model.url, [work]));
    const uid = created.metadata.uid;
    if (!uid) throw new Error('the created AgentRun has no uid');
    const owner = { namespace: env.namespace, name: runName, uid };
    const kc = loadPooledKubeConfig(env.kube.kubeconfig);
    const journal = new KubeJournalStore(kc.makeApiClient(k8s.CustomObjectsApi));
    const pods = new KubePodClient(kc.makeApiClient(k8s.CoreV1Api));
    const runSpec = spec({ tools: [work] });
    const tool = resolvedTools(runSpec)[0] as PodTool;
    const podFor = (i: number, prefix: string) => buildToolPod({ run: { ...owner, spec: runSpec }, stepId: i, attempt: 1,
      podName: `${prefix}-s${i}`, tool, input: { task: `unit ${i}` } });
    const answer = (i: number) => modelEntry(i, i, response('tool_use', [toolUse(`toolu_${i}`, tool.name, { task: `unit ${i}` })]));
    const timed = async (parts: (() => Promise<unknown>)[]): Promise<number[]> => {
      const at = [performance.now()];
      for (const part of parts) {
        await part();
        at.push(performance.now());
      }
      return at.slice(1).map((t, i) => t - (at[i] ?? t));
    };
    const series = async (label: string, one: (i: number) => Promise<number[]>): Promise<number[][]> => {
      const out: number[][] = [];
      for (let i = 0; i < warmup + n; i++) {
        const parts = await one(i);
        if (i >= warmup) out.push(parts);
      }
      log(`${node}: ${label}: ${n} samples`);
      return out;
    };

    // A turn at a time, as in the `overhead` scenario: journal the answer, create the pod it asks
    // for (model step), wait untimed until the node has run it, read its log and journal the
    // result (tool step).
    const toolParts: number[][] = [];
    const model = await series('model + tool step', async (i) => {
      const parts = await timed([
        () => journal.write(owner, `${runName}-j${i}`, answer(i)),
        () => pods.create(podFor(i, runName)),
      ]);
      await waitEnded(env.kube.core, owner.namespace, `${runName}-s${i}`);
      const result = await timed([
        () => pods.readLog(owner.namespace, `${runName}-s${i}`, 'tool', 65_536),
        () => journal.write(owner, `${runName}-r${i}`, toolResultEntry(i, tool.name, `toolu_${i}`, 'ok')),
      ]);
      if (i >= warmup) toolParts.push(result);
      return parts;
    });
    if (!server) return { model, tool: toolParts };

    // The model step's two writes through a bare HTTPS keep-alive client (no client library).
    const bare = await bareClient(kc);
    const bareModel = await series('model step, bare client', async (i) => {
      const parts = await timed([
        () => bare('POST', `/apis/agentrun.dev/v1alpha1/namespaces/${owner.namespace}/agentrunjournals`,
          journalObject(owner, `${runName}-bj${i}`, answer(i))),
        () => bare('POST', `/api/v1/namespaces/${owner.namespace}/pods`, podFor(i, `${runName}-b`)),
      ]);
      await waitEnded(env.kube.core, owner.namespace, `${runName}-b-s${i}`);
      return parts;
    });

    // MCP step: the call on an open session, then its result journaled.
    const client = new Client({ name: 'floor', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
    const mcp = await series('MCP step', (i) => timed([
      () => client.callTool({ name: 'echo', arguments: { message: `floor t${i}` } }),
      () => journal.write(owner, `${runName}-m${i}`, toolResultEntry(i, 'echo', `toolu_m${i}`, `Echo: floor t${i}`)),
    ]));
    await client.close();

    // Status: the run's status with 10 finished steps, updated in place.
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const api = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns', namespace: owner.namespace, name: runName };
    let current = await custom.getNamespacedCustomObject(api) as Record<string, unknown>;
    const status = await series('status update', async (i) => {
      const steps = Array.from({ length: 10 }, (_, s) => s % 2 === 0
        ? journaled(modelStep(s + 1, s / 2 + 1), answer(s + 1))
        : journaled(toolStep(s + 1, (s + 1) / 2, tool.name, `toolu_${s}`), toolResultEntry(s + 1, tool.name, `toolu_${s}`, 'ok')));
      const body = { ...current, status: runningStatus(steps, { currentTurn: i }) };
      const start = performance.now();
      current = await custom.replaceNamespacedCustomObjectStatus({ ...api, body }) as Record<string, unknown>;
      return [performance.now() - start];
    });
    return { model, tool: toolParts, bareModel, mcp, status };
  } finally {
    await server?.stop();
    await env.close();
  }
}

function floorOf(target: string, what: string, s: Summary, limit: number): Target {
  return { target: `floor under "${target}": its requests alone (${what})`,
    measured: `${ms(s.p50)}${s.p50 > limit ? ' — above the target' : ''}`, met: 'n/a' };
}

/** A JSON request function over one keep-alive HTTPS connection with the kubeconfig's credentials. */
async function bareClient(kc: k8s.KubeConfig): Promise<(method: string, path: string, body: unknown) => Promise<void>> {
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  await kc.applyToHTTPSOptions(tls);
  const server = new URL(kc.getCurrentCluster()?.server ?? '');
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: tls.ca, cert: tls.cert, key: tls.key });
  return (method, path, body) => new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request({ host: server.hostname, port: server.port, method, path, agent,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode ?? 0} ${text.slice(0, 300)}`));
        else resolve();
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Waits until a tool pod has ended (the emulator runs it). */
async function waitEnded(core: k8s.CoreV1Api, namespace: string, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pod = await core.readNamespacedPod({ namespace, name });
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    if (Date.now() > deadline) throw new Error(`tool pod ${name} did not end in 60 s`);
    await sleep(20);
  }
}
