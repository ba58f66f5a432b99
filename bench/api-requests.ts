/**
 * API requests and bytes written per step, on a quiet dedicated control plane.
 *
 * Two sources, both the apiserver's and etcd's own:
 * - kube-apiserver `/metrics` (`apiserver_request_total` by verb/resource/subresource), scraped
 *   with the admin kubeconfig before and after each workload: every client together;
 * - the kube-apiserver audit log (the apiserver is restarted once with `--audit-policy-file` and
 *   `--audit-log-path`, same flags otherwise), which names the user: the operator runs as its own
 *   identity (`agentrun-operator`), so its requests are counted alone, without the emulated
 *   kubelet's (pod binding and status), the controller manager's or this benchmark's.
 * - etcd `/metrics`: `etcd_disk_wal_write_bytes_total` (bytes appended to the write-ahead log,
 *   i.e. written to disk) and `etcd_mvcc_put_total`.
 *
 * Three workloads of N runs each (zero-latency model, tool = `printf ok`):
 *   W1 = 1 tool turn (2 model + 1 tool steps), W5 = 5 tool turns (6 model + 5 tool),
 *   W5x2 = 5 turns of 2 parallel tools (6 model + 10 tool).
 * (W5 − W1) / 4 is the cost of one tool turn (one model step that asks for a tool + that tool
 * step); (W5x2 − W5) / 5 the cost of one more (parallel) tool step; their difference the cost of
 * the model step. Two more workloads measure a model step directly: M1 = the final answer only,
 * M6 = 5 pause_turn answers + the final answer (6 model steps, no tools); (M6 − M1) / 5 is one
 * model step. Watches are excluded everywhere.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userKubeconfig } from '../test/harness/control-plane.ts';
import { adminGet } from '../test/harness/control-plane.ts';
import { etcdUrl, restartComponent, until } from '../test/harness/own-cluster.ts';
import { sleep } from '../test/harness/measure.ts';
import { agentSpec, createRuns, scriptAgent, scriptPauses, startBenchEnv, workTool } from '../test/harness/fleet.ts';
import { diff, groupBy, metricSum, parseMetrics } from '../test/harness/metrics.ts';
import type { Scenario, Target } from './lib/scenario.ts';

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

interface AuditEvent { verb: string; user?: { username?: string }; objectRef?: { resource?: string; subresource?: string }; stage?: string; responseStatus?: { code?: number } }

interface Window { requestsByKey: Map<string, number>; metricsByKey: Map<string, number>; walBytes: number; bodyBytes: number; etcdPuts: number; ms: number }

export const apiRequests: Scenario = async ({ quick, log }) => {
  const n = quick ? 2 : 10;
  const env = await startBenchEnv({ label: 'api', modelLatencyMs: 0, startOperator: false, record: false, log });
  try {
    const info = env.cluster.info;
    // The operator gets its own identity, so the audit log can count its requests alone.
    const operatorKubeconfig = await userKubeconfig(info, 'agentrun-operator', ['system:masters']);
    const policy = join(info.stateDir, 'audit-policy.yaml');
    const auditLog = join(info.stateDir, 'logs', 'audit.log');
    await writeFile(policy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived", "ResponseStarted"]\nrules:\n- level: Metadata\n');
    await restartComponent(info, 'kube-apiserver', 0, [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-maxsize=0']);
    await until('the emulator to see the node again', async () => ((await env.kube.core.readNode({ name: 'node-api' })).status ? true : undefined), 30_000);
    const { OperatorProcess } = await import('../test/harness/operator-process.ts');
    const operator = new OperatorProcess({ kubeconfig: operatorKubeconfig, namespaces: [env.namespace], logLevel: 'info', keepLogs: false });
    await operator.start();
    await sleep(2_000);
    const etcd = await etcdUrl(info);

    const snapshot = async () => {
      const api = parseMetrics((await adminGet(info, '/metrics', 20_000)).body);
      const etcdText = await (await fetch(`${etcd}/metrics`)).text();
      const e = parseMetrics(etcdText);
      return {
        api: groupBy(api, 'apiserver_request_total', ['verb', 'resource', 'subresource'], (s) => s.labels.verb !== 'WATCH'),
        wal: metricSum(e, 'etcd_disk_wal_write_bytes_total'),
        bodyBytes: metricSum(api, 'apiserver_request_body_size_bytes_sum'),
        puts: metricSum(e, 'etcd_mvcc_put_total'),
        auditBytes: (await stat(auditLog)).size,
        at: Date.now(),
      };
    };
    const auditBetween = async (from: number, to: number): Promise<Map<string, number>> => {
      const text = (await readFile(auditLog)).subarray(from, to).toString('utf8');
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line) continue;
        const e = JSON.parse(line) as AuditEvent;
        if (e.user?.username !== 'agentrun-operator' || e.verb === 'watch') continue;
        const code = e.responseStatus?.code ?? 0;
        const key = `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}${code >= 300 ? ` (${code})` : ''}`;
        out.set(key, (out.get(key) ?? 0) + 1);
      }
      return out;
    };

    /** `pauses`: a model-only run of that many pause_turn answers (no tools) instead of tool turns. */
    const measure = async (label: string, turns: number, tools: number, pauses?: number): Promise<Window> => {
      const specs = Array.from({ length: n }, (_, i) => {
        const key = `[${label}-${i}]`;
        if (pauses !== undefined) scriptPauses(env.model, key, pauses);
        else scriptAgent(env.model, key, turns, tools);
        return { name: `${label}-${i}`, spec: agentSpec(key, env.model.url, pauses !== undefined ? [] : [workTool(env.execLog)]) };
      });
      await sleep(1_000);
      const before = await snapshot();
      await createRuns(env.kube, env.namespace, specs, 4);
      const names = new Set(specs.map((s) => s.name));
      await until(`${label} runs to finish`, async () => {
        const runs = (await env.kube.listRuns(env.namespace)).filter((r) => names.has(r.metadata.name ?? ''));
        return runs.length === n && runs.every((r) => ['Succeeded', 'Failed'].includes(r.status?.phase ?? '')) ? true : undefined;
      }, 300_000, 1_000);
      // Let the tail of the run (pod deletion, finalizer removal, events) land.
      await sleep(3_000);
      const after = await snapshot();
      const requestsByKey = await auditBetween(before.auditBytes, after.auditBytes);
      log(`${label}: ${[...requestsByKey.values()].reduce((a, b) => a + b, 0)} operator requests for ${n} runs`);
      return { requestsByKey, metricsByKey: diff(before.api, after.api), walBytes: after.wal - before.wal, bodyBytes: after.bodyBytes - before.bodyBytes, etcdPuts: after.puts - before.puts, ms: after.at - before.at };
    };

    // An idle window first: what the control plane does with nothing to do (subtracted nowhere, shown).
    const idleBefore = await snapshot();
    await sleep(10_000);
    const idleAfter = await snapshot();
    const idle = { seconds: (idleAfter.at - idleBefore.at) / 1000, requests: diff(idleBefore.api, idleAfter.api), walBytes: idleAfter.wal - idleBefore.wal, operator: await auditBetween(idleBefore.auditBytes, idleAfter.auditBytes) };

    const w1 = await measure('w1', 1, 1);
    const w5 = await measure('w5', 5, 1);
    const w5x2 = await measure('w5x2', 5, 2);
    const m1 = await measure('m1', 0, 0, 0);
    const m6 = await measure('m6', 0, 0, 5);
    await operator.stop();

    const total = (m: Map<string, number>, pred: (k: string) => boolean = () => true) => [...m].filter(([k]) => pred(k)).reduce((s, [, v]) => s + v, 0);
    const isWrite = (k: string) => WRITE_VERBS.has(k.split(' ')[0] ?? '');
    const perRun = (w: Window) => ({ requests: total(w.requestsByKey) / n, writes: total(w.requestsByKey, isWrite) / n, walBytes: w.walBytes / n, bodyBytes: w.bodyBytes / n, allClientsRequests: total(w.metricsByKey) / n });
    const [p1, p5, p5x2, pm1, pm6] = [perRun(w1), perRun(w5), perRun(w5x2), perRun(m1), perRun(m6)];
    const modelOnlyStep = { requests: (pm6.requests - pm1.requests) / 5, writes: (pm6.writes - pm1.writes) / 5, walBytes: (pm6.walBytes - pm1.walBytes) / 5, bodyBytes: (pm6.bodyBytes - pm1.bodyBytes) / 5 };
    const toolTurn = { requests: (p5.requests - p1.requests) / 4, writes: (p5.writes - p1.writes) / 4, walBytes: (p5.walBytes - p1.walBytes) / 4, bodyBytes: (p5.bodyBytes - p1.bodyBytes) / 4 };
    const extraTool = { requests: (p5x2.requests - p5.requests) / 5, writes: (p5x2.writes - p5.writes) / 5, walBytes: (p5x2.walBytes - p5.walBytes) / 5, bodyBytes: (p5x2.bodyBytes - p5.bodyBytes) / 5 };
    const modelStep = { requests: toolTurn.requests - extraTool.requests, writes: toolTurn.writes - extraTool.writes, walBytes: toolTurn.walBytes - extraTool.walBytes, bodyBytes: toolTurn.bodyBytes - extraTool.bodyBytes };
    const perKey = (a: Window, b: Window, div: number) => {
      const keys = new Set([...a.requestsByKey.keys(), ...b.requestsByKey.keys()]);
      return [...keys].sort().map((k) => [k, ((b.requestsByKey.get(k) ?? 0) - (a.requestsByKey.get(k) ?? 0)) / n / div] as const).filter(([, v]) => Math.abs(v) >= 0.05);
    };
    const fmt = (v: number) => (Math.round(v * 100) / 100).toString();
    const breakdown = (rows: readonly (readonly [string, number])[]) => rows.map(([k, v]) => `${k} ${fmt(v)}`).join(', ');
    const targets: Target[] = [
      { target: '≤ 2 API writes per model step (watches excluded)', measured: `${fmt(modelOnlyStep.writes)} writes (${fmt(modelOnlyStep.requests)} requests); in a tool turn, by difference: ${fmt(modelStep.writes)} writes`, met: modelOnlyStep.writes <= 2,
        note: '(M6 − M1) / 5: five more model steps (pause_turn continuations) and nothing else' },
      { target: '≤ 5 API requests per tool step (watches excluded)', measured: `${fmt(extraTool.requests)} requests (${fmt(extraTool.writes)} writes) per added parallel tool step; a whole tool turn (model + tool step) ${fmt(toolTurn.requests)}`,
        met: extraTool.requests <= 5, note: 'the operator\'s own requests, from the audit log' },
    ];
    return {
      scenario: 'api-requests',
      title: 'API requests and bytes written per step (dedicated control plane, audit log + /metrics)',
      params: { runsPerWorkload: n, workloads: 'W1 = 1 tool turn, W5 = 5 tool turns, W5x2 = 5 turns × 2 parallel tools, M1 = final answer only, M6 = 5 pause_turn answers + final answer', modelLatencyMs: 0 },
      table: [
        ['Operator requests per run: W1 / W5 / W5x2', `${fmt(p1.requests)} / ${fmt(p5.requests)} / ${fmt(p5x2.requests)} (writes ${fmt(p1.writes)} / ${fmt(p5.writes)} / ${fmt(p5x2.writes)})`],
        ['All clients (apiserver_request_total, excl. WATCH) per run: W1 / W5 / W5x2', `${fmt(p1.allClientsRequests)} / ${fmt(p5.allClientsRequests)} / ${fmt(p5x2.allClientsRequests)}`],
        ['Per tool turn (model step + tool step): operator requests / writes / etcd WAL bytes / request body bytes (all clients)', `${fmt(toolTurn.requests)} / ${fmt(toolTurn.writes)} / ${Math.round(toolTurn.walBytes)} B / ${Math.round(toolTurn.bodyBytes)} B`],
        ['Per added parallel tool step: requests / writes / WAL bytes / body bytes', `${fmt(extraTool.requests)} / ${fmt(extraTool.writes)} / ${Math.round(extraTool.walBytes)} B / ${Math.round(extraTool.bodyBytes)} B`],
        ['Per model step (difference): requests / writes / WAL bytes / body bytes', `${fmt(modelStep.requests)} / ${fmt(modelStep.writes)} / ${Math.round(modelStep.walBytes)} B / ${Math.round(modelStep.bodyBytes)} B`],
        ['Per model step, measured alone ((M6 − M1) / 5): requests / writes / WAL bytes / body bytes', `${fmt(modelOnlyStep.requests)} / ${fmt(modelOnlyStep.writes)} / ${Math.round(modelOnlyStep.walBytes)} B / ${Math.round(modelOnlyStep.bodyBytes)} B`],
        ['Operator requests per model step ((M6 − M1) / 5), by verb and resource', breakdown(perKey(m1, m6, 5))],
        ['Per-run fixed cost (W1 minus one tool turn): requests / writes', `${fmt(p1.requests - toolTurn.requests)} / ${fmt(p1.writes - toolTurn.writes)}`],
        ['Operator requests per tool turn, by verb and resource', breakdown(perKey(w1, w5, 4))],
        ['Operator requests per added parallel tool step, by verb and resource', breakdown(perKey(w5, w5x2, 5))],
        ['Operator requests per run W1, by verb and resource', breakdown([...w1.requestsByKey].sort().map(([k, v]) => [k, v / n] as const))],
        ['Idle control plane (10 s, nothing running): requests / WAL bytes', `${total(idle.requests)} / ${idle.walBytes} B (operator: ${total(idle.operator)})`],
      ],
      targets,
      notes: [
        'Bytes written = etcd_disk_wal_write_bytes_total: every write of every client (the emulated kubelet\'s pod status updates included), as appended to etcd\'s WAL.',
        'The operator\'s requests are attributed from the audit log by user; the emulated kubelet, the controller manager and this benchmark use other identities.',
      ],
      data: {
        w1: serialize(w1), w5: serialize(w5), w5x2: serialize(w5x2), m1: serialize(m1), m6: serialize(m6), perRun: { p1, p5, p5x2, pm1, pm6 }, toolTurn, extraTool, modelStep, modelOnlyStep,
        idle: { ...idle, requests: Object.fromEntries(idle.requests), operator: Object.fromEntries(idle.operator) },
      },
    };
  } finally {
    await env.close();
  }
};

function serialize(w: Window): Record<string, unknown> {
  return { requestsByKey: Object.fromEntries(w.requestsByKey), metricsByKey: Object.fromEntries(w.metricsByKey), walBytes: w.walBytes, bodyBytes: w.bodyBytes, etcdPuts: w.etcdPuts, ms: w.ms };
}
