/**
 * Every manifest in deploy/examples/ is applied with the real kubectl and run to completion by
 * the real operator, with tool pods in real containers on the cluster's real node (images built
 * locally by `npm run cluster:install`), or run by the node emulator as local processes when the
 * cluster has no real node (AGENTRUN_NODE=emulator, not root).
 *
 * What is NOT as in production, exactly:
 * - The model is the mock Messages API server, scripted per example (keyed on a phrase of the
 *   example's prompt). Runs name only their ModelEndpoint, so ONE change is made, to
 *   model-endpoint.yaml: `spec.baseURL` points at the mock (scripts/dev/manifests.ts, the same code
 *   `npm run dev` uses); `baseURLOnlyDiff` proves nothing else differs, in any file. The examples'
 *   Secret `anthropic` is created with a dummy key, which the mock server is told to accept (and only it).
 * - research-agent.yaml really runs curl, but there is no internet here: the scripted model asks
 *   web_fetch for a page served by this test on the node IP (127.0.0.1 with the emulator). The
 *   tool definition is unchanged; only what the "model" chose to fetch is local. The image
 *   curlimages/curl:8.11.1 is a local stand-in (busybox + Debian's curl; scripts/cluster/images.sh).
 * - Approvals are made as a user bound to the agentrun-approver ClusterRole, through the real
 *   admission policies (kubectl annotate, or the kubectl agentrun plugin in quickstart.test.ts).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/api/agent-run.ts';
import { approveKey } from '../../src/api/approval.ts';
import { baseURLOnlyDiff, parseManifest, withModelBaseURL } from '../../scripts/dev/manifests.ts';
import { isDeepStrictEqual } from 'node:util';
import { stringify } from 'yaml';
import { startEverythingServer } from '../harness/mcp-server.ts';
import { demoAgent } from '../../scripts/dev/demo-agent.ts';
import { repoRoot, userKubeconfig } from '../harness/control-plane.ts';
import { clients, cluster, createNamespace, journalEntryOf, kubectl } from '../harness/kube.ts';
import { startMockModelServer, text, toolUse, type MockModelServer } from '../harness/mock-model-server.ts';
import type { NodeEmulator } from '../harness/node-emulator.ts';
import { clusterNodes, onRealNode, startTestNode } from '../harness/test-node.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { finished, releasePodFinalizers, runEvents, waitForRun } from '../harness/agent-env.ts';

const EXAMPLES = join(repoRoot, 'deploy', 'examples');
/** /etc/os-release of the local busybox images (scripts/cluster/images.sh). */
const BUSYBOX_IMAGE_OS_RELEASE = 'NAME="BusyBox"\nID=busybox\nVERSION_ID=1.37\nPRETTY_NAME="BusyBox (agentrun-operator local image from Debian busybox-static)"\n';
const DUMMY_KEY = 'sk-ant-dummy-key-for-the-examples-test';

let model: MockModelServer;
let emulator: NodeEmulator | undefined;
let operator: OperatorProcess;
let ns = '';
/** A second namespace, for applying an example a second time with the same names. */
let ns2 = '';
let alice = '';
const covered = new Set<string>();

beforeAll(async () => {
  model = await startMockModelServer({ apiKeys: [DUMMY_KEY] });
  ns = await createNamespace('examples');
  ns2 = await createNamespace('examples-again');
  for (const namespace of [ns, ns2]) {
    await kubectl(['create', 'secret', 'generic', 'anthropic', '-n', namespace, `--from-literal=api-key=${DUMMY_KEY}`]);
    await applyExample('model-endpoint.yaml', namespace);
  }
  alice = await userKubeconfig(cluster(), 'alice-examples', ['example-approvers']);
  await kubectl(['create', 'rolebinding', 'approvers', '-n', ns, '--clusterrole=agentrun-approver', '--group=example-approvers']);
  emulator = await startTestNode(`node-${ns}`, [ns, ns2]);
  operator = new OperatorProcess({ kubeconfig: cluster().kubeconfig, namespaces: [ns, ns2], extraArgs: ['--metrics-port', '0'] });
  await operator.start();
});

afterAll(async () => {
  await operator.stop();
  for (const namespace of [ns, ns2]) await releasePodFinalizers(namespace);
  await emulator?.stop();
  await model.close();
  for (const namespace of [ns, ns2]) await clients().core.deleteNamespace({ name: namespace }).catch(() => undefined);
});

/** Applies an example as a user would, with a ModelEndpoint's spec.baseURL the only change (checked). */
async function applyExample(file: string, namespace = ns): Promise<string> {
  covered.add(file);
  const original = await readFile(join(EXAMPLES, file), 'utf8');
  const patched = withModelBaseURL(original, model.url);
  expect(baseURLOnlyDiff(original, patched), `${file}: only a ModelEndpoint's spec.baseURL may differ`).toEqual([]);
  const { stdout } = await kubectl(['apply', '-n', namespace, '-f', '-'], { input: patched });
  return stdout;
}

async function done(name: string, namespace = ns, timeoutMs = 60_000): Promise<AgentRun> {
  return waitForRun(namespace, name, `${name} to finish`, finished, timeoutMs);
}

function succeeded(run: AgentRun): void {
  expect(run.status?.phase, `${run.metadata.name ?? ''}: ${run.status?.message ?? ''}\n${operator.tail(20)}`).toBe('Succeeded');
  expect(run.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'True', reason: 'Completed' });
}

const awaitingApproval = (name: string) => waitForRun(ns, name, `${name} to await approval`, (r) => r.status?.phase === 'AwaitingApproval' || finished(r));

async function toolOutput(run: AgentRun, stepId: number): Promise<string> {
  const step = run.status?.steps?.find((s) => s.id === stepId);
  return String((await journalEntryOf(run.metadata.namespace ?? ns, step?.journal?.name ?? '')).output);
}

async function runPods(namespace: string, run: string): Promise<string[]> {
  const list = await clients().core.listNamespacedPod({ namespace, labelSelector: `agentrun.dev/run=${run}` });
  return list.items.map((p) => p.metadata?.name ?? '');
}

describe('deploy/examples', () => {
  it('research-agent.yaml: web_fetch runs the real curl (against a local page: no internet here) and the answer cites it', async () => {
    const page = 'Kubernetes 1.0 was released on July 21, 2015. It included pods, replication controllers, services, labels and kubectl.';
    const userAgents: string[] = [];
    const server: Server = createServer((req, res) => {
      userAgents.push(req.headers['user-agent'] ?? '');
      if (req.url !== '/kubernetes-1.0') { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(page);
    });
    const host = clusterNodes().hostIP;
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const url = `http://${host}:${(server.address() as AddressInfo).port}/kubernetes-1.0`;
    try {
      model.script('When was the first Kubernetes release', [
        { content: [text('Let me fetch a source.'), toolUse('web_fetch', { url })] },
        (req) => ({ content: [text(`According to ${url}: ${req.toolResults[0]?.text ?? '(nothing)'}`)] }),
      ]);
      const applied = await applyExample('research-agent.yaml');
      expect(applied).toContain('agenttool.agentrun.dev/web-fetch created');
      const run = await done('research-kubernetes-history');
      succeeded(run);
      expect(await toolOutput(run, 2)).toBe(page);
      expect(userAgents).toEqual([expect.stringMatching(/^curl\//)]);
      expect(run.status?.result).toBe(`According to ${url}: ${page}`);
      expect(run.status?.steps?.[1]).toMatchObject({ kind: 'Tool', tool: 'web_fetch', outcome: 'Completed' });
    } finally {
      server.close();
    }
  });

  it('shell-with-approval.yaml: run_shell waits with no pod until an approver approves, then runs', async () => {
    const command = "wc -l < /etc/os-release; grep '^NAME=' /etc/os-release";
    model.script('Count the lines of /etc/os-release', [
      { content: [toolUse('run_shell', { command })] },
      (req) => {
        const [count, name] = (req.toolResults[0]?.text ?? '').trim().split('\n');
        return { content: [text(`/etc/os-release has ${count?.trim() ?? '?'} lines; the distribution is ${name?.replace(/^NAME=/, '').replaceAll('"', '') ?? '?'}.`)] };
      },
    ]);
    await applyExample('shell-with-approval.yaml');
    const waiting = await awaitingApproval('fix-the-build');
    expect(waiting.status?.phase).toBe('AwaitingApproval');
    expect(waiting.status?.pendingApprovals).toEqual([expect.objectContaining({ step: 2, tool: 'run_shell', inputPreview: JSON.stringify({ command }) })]);
    expect(await runPods(ns, 'fix-the-build')).toEqual([]);

    await kubectl(['annotate', 'agentrun', 'fix-the-build', '-n', ns, `${approveKey(2)}=read-only, fine`], { kubeconfig: alice });
    const run = await done('fix-the-build');
    succeeded(run);
    expect(run.status?.steps?.[1]?.approval).toMatchObject({ decision: 'Approved', by: 'alice-examples', comment: 'read-only, fine' });
    // The command ran in the busybox:1.37 container (whose /etc/os-release is the local image's,
    // not this machine's), or on this machine with the node emulator (local processes).
    const osRelease = onRealNode() ? BUSYBOX_IMAGE_OS_RELEASE : readFileSync('/etc/os-release', 'utf8');
    const lines = osRelease.split('\n').length - 1;
    const name = /^NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? '';
    expect(run.status?.result).toBe(`/etc/os-release has ${lines} lines; the distribution is ${name}.`);
  });

  it('budget-and-deadline.yaml: an overloaded model is retried with the run\'s backoff; the token budget stops a run that uses it up', async () => {
    const key = 'Summarise the CAP theorem';
    const summary = 'Consistency, availability and partition tolerance cannot all hold. During a partition you choose. Otherwise both.';
    model.script(key, [{ content: [text(summary)] }]);
    model.failNext(1, { status: 529 }, key);
    await applyExample('budget-and-deadline.yaml');
    const run = await done('summarise-with-budget');
    succeeded(run);
    expect(run.status?.result).toBe(summary);
    expect(run.status?.steps?.[0]).toMatchObject({ kind: 'Model', attempt: 2, retry: { attempt: 1, errorClass: 'Overloaded' } });
    expect((await runEvents(ns, 'summarise-with-budget')).map((e) => e.reason)).toContain('ModelRetrying');
    expect(run.status?.usage?.totalTokens).toBeLessThan(20_000);
    expect(model.requests(key)).toHaveLength(2);

    // The same file in another namespace, with a "model" that pauses its turn after 25k tokens:
    // the next call would exceed limits.maxTotalTokens (20000), so it is never made.
    model.script(key, [
      { content: [text('Thinking about it at length…')], stopReason: 'pause_turn', usage: { input_tokens: 25_000, output_tokens: 10 } },
      { content: [text('never sent')] },
    ]);
    await applyExample('budget-and-deadline.yaml', ns2);
    const over = await done('summarise-with-budget', ns2);
    expect(over.status?.phase).toBe('Failed');
    expect(over.status?.conditions?.find((c) => c.type === 'Succeeded')).toMatchObject({ status: 'False', reason: 'TokenBudgetExceeded' });
    expect(over.status?.message).toContain('limits.maxTotalTokens');
    expect(model.requests(key)).toHaveLength(3);
  });

  it('parallel-tools.yaml: three tool calls of one turn start together and all results go back in one message', async () => {
    const key = 'Give me the SHA-256 digest';
    const phrase = 'durable agents survive crashes';
    model.script(key, [
      { content: [toolUse('sha256', { text: phrase }), toolUse('base64', { text: phrase }), toolUse('word_count', { text: phrase })] },
      (req) => {
        const [sha, b64, words] = req.toolResults.map((r) => r.text.trim());
        return { content: [text(`SHA-256 ${sha ?? '?'}, base64 ${b64 ?? '?'}, ${words ?? '?'} words.`)] };
      },
    ]);
    await applyExample('parallel-tools.yaml');
    const run = await done('fingerprint-a-phrase');
    succeeded(run);
    const sha = createHash('sha256').update(phrase).digest('hex');
    expect(run.status?.result).toBe(`SHA-256 ${sha}, base64 ${Buffer.from(phrase).toString('base64')}, 4 words.`);
    const tools = (run.status?.steps ?? []).filter((s) => s.kind === 'Tool');
    expect(tools.map((s) => `${s.tool ?? ''}:${s.outcome ?? ''}`)).toEqual(['sha256:Completed', 'base64:Completed', 'word_count:Completed']);
    // Started in the same reconcile (one decision, one timestamp), not one after another.
    expect(new Set(tools.map((s) => s.startedAt)).size).toBe(1);
    const second = model.requests(key)[1]?.body as { messages: { content: { type: string }[] }[] };
    expect(second.messages[2]?.content.map((b) => b.type)).toEqual(['tool_result', 'tool_result', 'tool_result']);
  });

  it('tool-library.yaml: two runs share the AgentTools by toolRef, each journaling the definitions it used', async () => {
    const headline = 'Durable agents outlive their crashes';
    model.script('five-word headline', [
      { content: [toolUse('upper_case', { text: headline })] },
      (req) => ({ content: [toolUse('text_stats', { text: req.toolResults[0]?.text.trim() ?? '' })] }),
      (req) => {
        const upper = toolOutcome(req.body, 'upper_case');
        return { content: [text(`${upper} (${req.toolResults[0]?.text.trim() ?? '?'})`)] };
      },
    ]);
    model.script('journal every step', [
      { content: [toolUse('text_stats', { text: 'journal every step' })] },
      (req) => ({ content: [text(`"journal every step" has ${req.toolResults[0]?.text.trim() ?? '?'}.`)] }),
    ]);
    const applied = await applyExample('tool-library.yaml');
    expect(applied).toContain('agenttool.agentrun.dev/text-stats created');
    const [headlineRun, motto] = await Promise.all([done('headline-in-capitals'), done('measure-a-motto')]);
    succeeded(headlineRun);
    succeeded(motto);
    expect(headlineRun.status?.result).toBe('DURABLE AGENTS OUTLIVE THEIR CRASHES (5 words, 36 bytes)');
    expect(motto.status?.result).toBe('"journal every step" has 3 words, 18 bytes.');
    for (const run of ['headline-in-capitals', 'measure-a-motto']) {
      const snapshot = await journalEntryOf(ns, `${run}-tools`) as { tools: { name: string; source?: string; container: { image: string } }[] };
      expect(snapshot.tools.find((t) => t.name === 'text_stats')).toMatchObject({ source: 'text-stats', container: { image: 'busybox:1.37' } });
    }
  });

  it('demo.yaml (what npm run dev applies): the demo agent calls two tools in parallel, waits for approval, then summarises', async () => {
    model.defaultScript(demoAgent);
    await applyExample('demo.yaml');
    const waiting = await awaitingApproval('demo');
    expect(waiting.status?.pendingApprovals).toEqual([expect.objectContaining({ step: 5, tool: 'run_shell', inputPreview: '{"command":"uptime"}' })]);
    const parallel = (waiting.status?.steps ?? []).filter((s) => s.turn === 1 && s.kind === 'Tool');
    expect(parallel.map((s) => `${s.tool ?? ''}:${s.phase}`)).toEqual(['clock:Succeeded', 'host_info:Succeeded']);
    await kubectl(['annotate', 'agentrun', 'demo', '-n', ns, `${approveKey(5)}=go ahead`], { kubeconfig: alice });
    const run = await done('demo');
    succeeded(run);
    expect(run.status?.result).toMatch(/^It is \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ on \S+ .*, \d+ CPUs\. The machine reports: .*up.*\.$/);
  });

  it('mcp-everything.yaml: the run calls get-sum on the real server-everything, with no pod', async () => {
    // The MCPServer's spec.url points at the server this test starts on 127.0.0.1: the one change
    // besides the ModelEndpoint's baseURL (checked below).
    const server = await startEverythingServer();
    try {
      model.script('Add 17 and 25', [
        { content: [toolUse('mcp_get-sum', { a: 17, b: 25 })] },
        (req) => ({ content: [text(`17 + 25: ${req.toolResults[0]?.text.trim() ?? '?'}`)] }),
      ]);
      covered.add('mcp-everything.yaml');
      const original = await readFile(join(EXAMPLES, 'mcp-everything.yaml'), 'utf8');
      const patched = withMCPServerURL(withModelBaseURL(original, model.url), server.url);
      expect(urlsOnlyDiff(original, patched)).toEqual([]);
      await kubectl(['apply', '-n', ns, '-f', '-'], { input: patched });
      const run = await done('mcp-sum');
      succeeded(run);
      expect(run.status?.result).toBe('17 + 25: The sum of 17 and 25 is 42.');
      expect(run.status?.steps?.find((s) => s.kind === 'Tool')).toMatchObject({ tool: 'mcp_get-sum', mcpServer: 'everything', outcome: 'Completed' });
      expect(await runPods(ns, 'mcp-sum')).toEqual([]);
      const first = model.requests('Add 17 and 25')[0]?.body as { tools?: { name: string }[] };
      expect(first.tools?.map((t) => t.name)).toEqual(['mcp_get-sum', 'mcp_echo']);
    } finally {
      await server.stop();
    }
  });

  it('mcp-managed.yaml: the operator runs server-memory (through supergateway) on the node; the run writes and reads its graph', async () => {
    // The server runs from the local image agentrun.dev/mcp-servers: only a real node runs images.
    expect(onRealNode(), `a managed MCP server needs a real node: ${clusterNodes().why}`).toBe(true);
    model.script('Remember that Ada Lovelace', [
      { content: [toolUse('mem_create_entities', { entities: [{ name: 'Ada Lovelace', entityType: 'person', observations: ['wrote the first program'] }] })] },
      { content: [toolUse('mem_read_graph', {})] },
      (req) => ({ content: [text(req.toolResults[0]?.text.includes('wrote the first program') ? 'Ada Lovelace wrote the first program.' : '?')] }),
    ]);
    await applyExample('mcp-managed.yaml');
    const run = await done('mcp-remember', ns, 180_000);
    succeeded(run);
    expect(run.status?.result).toBe('Ada Lovelace wrote the first program.');
    expect(run.status?.steps?.filter((s) => s.kind === 'Tool').map((s) => [s.tool, s.mcpServer, s.outcome]))
      .toEqual([['mem_create_entities', 'memory', 'Completed'], ['mem_read_graph', 'memory', 'Completed']]);
  });

  it('every example file was applied and run by this test', async () => {
    const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml')).sort();
    expect([...covered].sort()).toEqual(files);
  });
});

/** The text of the last tool_result for `tool` in a request body. */
function toolOutcome(body: Readonly<Record<string, unknown>>, tool: string): string {
  const messages = (body.messages ?? []) as { content: { type: string; id?: string; name?: string; tool_use_id?: string; content?: unknown }[] }[];
  const ids = new Set(messages.flatMap((m) => m.content).filter((b) => b.type === 'tool_use' && b.name === tool).map((b) => b.id));
  const result = messages.flatMap((m) => m.content).findLast((b) => b.type === 'tool_result' && ids.has(b.tool_use_id));
  return typeof result?.content === 'string' ? result.content.trim() : '';
}


/** The manifest with every MCPServer's spec.url set to `url`. */
function withMCPServerURL(text: string, url: string): string {
  return parseManifest(text).map((doc) => {
    if (doc.kind !== 'MCPServer') return stringify(doc, { lineWidth: 0 });
    const copy = structuredClone(doc) as { spec: Record<string, unknown> };
    copy.spec.url = url;
    return stringify(copy, { lineWidth: 0 });
  }).join('---\n');
}

/** What differs between two manifests other than ModelEndpoint spec.baseURL and MCPServer spec.url. */
function urlsOnlyDiff(original: string, patched: string): string[] {
  const strip = (text: string) => parseManifest(text).map((doc) => {
    const copy = structuredClone(doc) as { kind?: unknown; spec?: Record<string, unknown> };
    if (copy.kind === 'ModelEndpoint') delete copy.spec?.baseURL;
    if (copy.kind === 'MCPServer') delete copy.spec?.url;
    return copy;
  });
  const [a, b] = [strip(original), strip(patched)];
  return a.length === b.length && isDeepStrictEqual(a, b) ? [] : ['the manifest changed beyond ModelEndpoint spec.baseURL and MCPServer spec.url'];
}
