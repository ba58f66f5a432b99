/**
 * The `kubectl agentrun` plugin, end to end: the real executable bin/kubectl-agentrun runs as a
 * child process against the test cluster, as a user would run it. No operator runs here: each run
 * is created with its status written through the status subresource and its journal ConfigMaps
 * written as the operator writes them (AgentRunJournal + sha256 digest in status), so every test knows
 * exactly what the plugin must print and do.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRunStatus, StepRecord } from '../../src/api/agent-run.ts';
import { journalObject } from '../../src/core/journal.ts';
import { type JournalEntry } from '../../src/api/journal-entry.ts';
import { repoRoot, userKubeconfig } from '../harness/control-plane.ts';
import { clients, cluster, createNamespace, eventually, kubectl } from '../harness/kube.ts';
import { startTestNode } from '../harness/test-node.ts';

const BIN = join(repoRoot, 'bin', 'kubectl-agentrun');
const API = { group: 'agentrun.dev', version: 'v1alpha1', plural: 'agentruns' } as const;
const { core, custom } = clients();
let ns = '';

// ---- running the plugin ----

interface Result { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** Runs bin/kubectl-agentrun with KUBECONFIG set (admin unless told otherwise); stdin is a pipe, not a TTY. */
function plugin(args: readonly string[], options: { kubeconfig?: string; input?: string; command?: readonly string[] } = {}): Promise<Result> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBECONFIG: options.kubeconfig ?? cluster().kubeconfig,
    // `#!/usr/bin/env node` must find the Node that strips types, whatever else is on PATH.
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  const [exe, ...exeArgs] = options.command ?? [BIN, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(exe ?? BIN, exeArgs, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, stdout, stderr }); });
    child.stdin.end(options.input ?? '');
  });
}

/** A run of the plugin that must succeed; the failure shows what it printed. */
async function ok(args: readonly string[], options: Parameters<typeof plugin>[1] = {}): Promise<Result> {
  const r = await plugin(args, options);
  expect(r.code, `kubectl agentrun ${args.join(' ')}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  return r;
}

/** A run of the plugin that must fail with exit 1 and one line on stderr. */
async function fails(args: readonly string[], options: Parameters<typeof plugin>[1] = {}): Promise<string> {
  const r = await plugin(args, options);
  expect(r.code, `kubectl agentrun ${args.join(' ')} should fail\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, 'one line on stderr').toHaveLength(1);
  return lines[0] ?? '';
}

// ---- seeding runs as the operator would have left them ----

/** Timestamps `msAgo` before `now`; a scenario fixes `now` once, so durations between its timestamps are exact. */
const clock = (now = Date.now()) => (msAgo: number): string => new Date(now - msAgo).toISOString();
const MIN = 60_000;
const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const usage = (input: number, output: number, cacheRead = 0, cacheWrite = 0) => ({
  inputTokens: input, outputTokens: output, cacheReadInputTokens: cacheRead, cacheCreationInputTokens: cacheWrite,
  totalTokens: input + output + cacheRead + cacheWrite,
});

interface Scenario {
  readonly spec: Record<string, unknown>;
  /** Steps without their journal reference: seed() adds it for each step with an entry. */
  readonly steps: StepRecord[];
  readonly entries: JournalEntry[];
  readonly status: Omit<AgentRunStatus, 'steps'>;
}

/**
 * Creates the run, its journal entries (owned AgentRunJournals) and its status.
 * `tamper` stores a different text for that step than the digest in status covers.
 */
async function seed(name: string, scenario: Scenario, options: { tamper?: number } = {}): Promise<string> {
  const created = await custom.createNamespacedCustomObject({
    ...API, namespace: ns, body: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name }, spec: scenario.spec },
  }) as { metadata: { uid: string } };
  const steps = scenario.steps.map((s) => ({ ...s }));
  for (const entry of scenario.entries) {
    if (entry.kind === 'Tools') continue;
    const text = JSON.stringify(entry);
    const cmName = `${name}-j${entry.stepId}`;
    const body = journalObject({ name, namespace: ns, uid: created.metadata.uid }, cmName, entry);
    if (options.tamper === entry.stepId) body.spec.entry = text.replace(/"output":"/, '"output":"TAMPERED ');
    await custom.createNamespacedCustomObject({ ...API, plural: 'agentrunjournals', namespace: ns, body });
    const step = steps.find((s) => s.id === entry.stepId);
    if (!step) throw new Error(`scenario has an entry for step ${entry.stepId} but no step`);
    step.journal = { name: cmName, digest: sha256(text) };
  }
  const current = await custom.getNamespacedCustomObject({ ...API, namespace: ns, name }) as object;
  await custom.replaceNamespacedCustomObjectStatus({ ...API, namespace: ns, name, body: { ...current, status: { ...scenario.status, steps } } });
  return created.metadata.uid;
}

const SHELL = { name: 'shell', description: 'Run a shell command.', container: { image: 'busybox:1.37', command: ['sh', '-c', 'eval "$CMD"'] } };
const WEB_FETCH = { name: 'web_fetch', description: 'Fetch a page.', container: { image: 'curlimages/curl:8.11.1', command: ['curl', '-fsSL'] } };
const POLICY = `Cleanup policy: ${'files older than seven days in /tmp may be removed without asking anyone; '.repeat(5)}`;
const LS_OUTPUT = 'a.log\nb.log\nls: /tmp/locked: Permission denied';

/**
 * Turn 1: the model fetches a policy (step 2, truncated output) and lists /tmp (step 3, approved
 * by alice, exit 1). Turn 2: it wants to delete two files (steps 5 and 6), which await approval.
 */
function awaitingApproval(name: string, onReject: 'Continue' | 'Fail' = 'Continue'): Scenario {
  const iso = clock();
  const t1 = [
    { type: 'text', text: 'I will read the cleanup policy and look at /tmp first.' },
    { type: 'tool_use', id: 'toolu_01', name: 'web_fetch', input: { url: 'https://example.com/policy' } },
    { type: 'tool_use', id: 'toolu_02', name: 'shell', input: { cmd: 'ls /tmp' } },
  ];
  const t2 = [
    { type: 'text', text: 'Two old logs; removing them.' },
    { type: 'tool_use', id: 'toolu_03', name: 'shell', input: { cmd: 'rm /tmp/a.log' } },
    { type: 'tool_use', id: 'toolu_04', name: 'shell', input: { cmd: 'rm /tmp/b.log' } },
  ];
  return {
    spec: {
      model: { name: 'claude-test', endpointRef: { name: 'nowhere' } },
      systemPrompt: 'You are a careful janitor.',
      prompt: 'Clean up /tmp and report what was removed.',
      tools: [WEB_FETCH, SHELL],
      approvals: { requiredFor: ['shell'], onReject },
    },
    steps: [
      { id: 1, kind: 'Model', turn: 1, phase: 'Succeeded', outcome: 'Completed', attempt: 2, startedAt: iso(10 * MIN), finishedAt: iso(10 * MIN - 2500),
        usage: usage(1200, 80, 1000, 200), stopReason: 'tool_use', retry: { attempt: 1, errorClass: 'Overloaded', errorMessage: '529: overloaded' } },
      { id: 2, kind: 'Tool', turn: 1, phase: 'Succeeded', outcome: 'Completed', tool: 'web_fetch', toolUseId: 'toolu_01', attempt: 1,
        podName: `${name}-s2-a1`, startedAt: iso(9 * MIN), finishedAt: iso(9 * MIN - 1200) },
      { id: 3, kind: 'Tool', turn: 1, phase: 'Failed', outcome: 'ToolError', tool: 'shell', toolUseId: 'toolu_02', attempt: 1, message: 'exit code 1',
        podName: `${name}-s3-a1`, startedAt: iso(8 * MIN), finishedAt: iso(8 * MIN - 800),
        approval: { decision: 'Approved', by: 'alice', at: iso(8 * MIN), comment: 'ls is harmless' } },
      { id: 4, kind: 'Model', turn: 2, phase: 'Succeeded', outcome: 'Completed', attempt: 1, startedAt: iso(4 * MIN), finishedAt: iso(4 * MIN - 1500),
        usage: usage(300, 60, 2200, 150), stopReason: 'tool_use' },
      { id: 5, kind: 'Tool', turn: 2, phase: 'AwaitingApproval', tool: 'shell', toolUseId: 'toolu_03', attempt: 1, startedAt: iso(3 * MIN) },
      { id: 6, kind: 'Tool', turn: 2, phase: 'AwaitingApproval', tool: 'shell', toolUseId: 'toolu_04', attempt: 1, startedAt: iso(3 * MIN) },
    ],
    entries: [
      { kind: 'ModelResponse', stepId: 1, turn: 1, attempt: 2,
        response: { id: 'msg_1', model: 'claude-test', content: t1, stop_reason: 'tool_use', usage: { input_tokens: 1200, output_tokens: 80, cache_read_input_tokens: 1000, cache_creation_input_tokens: 200 } } },
      { kind: 'ToolResult', stepId: 2, tool: 'web_fetch', toolUseId: 'toolu_01', attempt: 1, output: POLICY, isError: false, outcome: 'Completed',
        exitCode: 0, truncated: true, podName: `${name}-s2-a1` },
      { kind: 'ToolResult', stepId: 3, tool: 'shell', toolUseId: 'toolu_02', attempt: 1, output: LS_OUTPUT, isError: true, outcome: 'ToolError',
        exitCode: 1, truncated: false, podName: `${name}-s3-a1` },
      { kind: 'ModelResponse', stepId: 4, turn: 2, attempt: 1,
        response: { id: 'msg_2', model: 'claude-test', content: t2, stop_reason: 'tool_use', usage: { input_tokens: 300, output_tokens: 60, cache_read_input_tokens: 2200, cache_creation_input_tokens: 150 } } },
    ],
    status: {
      phase: 'AwaitingApproval', startTime: iso(10 * MIN), currentTurn: 2, currentStep: '5 tool/shell (+1)', waitingFor: 'approval: steps 5, 6',
      message: 'Turn 2: waiting for a human decision on steps 5, 6 (shell).',
      usage: usage(1500, 140, 3200, 350),
      conditions: [
        { type: 'Succeeded', status: 'Unknown', reason: 'Running', message: 'Turn 2: waiting for approval.', lastTransitionTime: iso(10 * MIN) },
        { type: 'AwaitingApproval', status: 'True', reason: 'ApprovalRequired', message: 'steps 5, 6 wait for approval', lastTransitionTime: iso(3 * MIN) },
      ],
      pendingApprovals: [
        { step: 5, kind: 'Tool', tool: 'shell', inputPreview: '{"cmd":"rm /tmp/a.log"}', since: iso(3 * MIN) },
        { step: 6, kind: 'Tool', tool: 'shell', inputPreview: '{"cmd":"rm /tmp/b.log"}', since: iso(3 * MIN) },
      ],
    },
  };
}

const DATE_OUTPUT = 'Tue Jan  1 00:00:00 UTC 2030\n';

/** A finished run: the model runs `date` (step 2, its pod since deleted) and answers. */
function succeeded(name: string): Scenario {
  const iso = clock();
  return {
    spec: { model: { name: 'claude-test', endpointRef: { name: 'nowhere' } }, prompt: 'What year is it on the node?', tools: [SHELL] },
    steps: [
      { id: 1, kind: 'Model', turn: 1, phase: 'Succeeded', outcome: 'Completed', attempt: 1, startedAt: iso(20 * MIN), finishedAt: iso(20 * MIN - 900), usage: usage(100, 20), stopReason: 'tool_use' },
      { id: 2, kind: 'Tool', turn: 1, phase: 'Succeeded', outcome: 'Completed', tool: 'shell', toolUseId: 'toolu_date', attempt: 1, podName: `${name}-s2-a1`,
        startedAt: iso(20 * MIN - 1000), finishedAt: iso(20 * MIN - 3000) },
      { id: 3, kind: 'Model', turn: 2, phase: 'Succeeded', outcome: 'Completed', attempt: 1, startedAt: iso(20 * MIN - 3100), finishedAt: iso(20 * MIN - 4000), usage: usage(150, 10), stopReason: 'end_turn' },
    ],
    entries: [
      { kind: 'ModelResponse', stepId: 1, turn: 1, attempt: 1, response: { id: 'msg_a', model: 'claude-test', stop_reason: 'tool_use', usage: { input_tokens: 100, output_tokens: 20 },
        content: [{ type: 'tool_use', id: 'toolu_date', name: 'shell', input: { cmd: 'date' } }] } },
      { kind: 'ToolResult', stepId: 2, tool: 'shell', toolUseId: 'toolu_date', attempt: 1, output: DATE_OUTPUT, isError: false, outcome: 'Completed', exitCode: 0, truncated: false },
      { kind: 'ModelResponse', stepId: 3, turn: 2, attempt: 1, response: { id: 'msg_b', model: 'claude-test', stop_reason: 'end_turn', usage: { input_tokens: 150, output_tokens: 10 },
        content: [{ type: 'text', text: 'It is 2030 on the node.' }] } },
    ],
    status: {
      phase: 'Succeeded', startTime: iso(20 * MIN), completionTime: iso(20 * MIN - 4000), currentTurn: 2, usage: usage(250, 30),
      result: 'It is 2030 on the node.', message: 'The model gave its final answer after 2 turns.',
      conditions: [{ type: 'Succeeded', status: 'True', reason: 'Completed', message: 'The model gave its final answer after 2 turns.', lastTransitionTime: iso(20 * MIN - 4000) }],
    },
  };
}

/** A run whose first model call failed transiently and is retried in a minute. */
function retrying(): Scenario {
  const iso = clock();
  return {
    spec: { model: { name: 'claude-test', endpointRef: { name: 'nowhere' } }, prompt: 'Say hello.' },
    steps: [{ id: 1, kind: 'Model', turn: 1, phase: 'Running', attempt: 2, startedAt: iso(MIN),
      retry: { attempt: 1, errorClass: 'RateLimited', errorMessage: '429: rate limited', nextRetryAt: iso(-10 * MIN) } }],
    entries: [],
    status: { phase: 'Running', startTime: iso(MIN), currentTurn: 0, currentStep: '1 model', waitingFor: 'model retry (RateLimited)', usage: usage(0, 0),
      message: 'Model call failed (RateLimited: 429: rate limited); attempt 2 soon.' },
  };
}

/** A run that reached limits.maxTurns with onExhausted=AskForApproval: step 3 asks for more turns. */
function askingForBudget(): Scenario {
  const iso = clock();
  const answer = (stepId: number, turn: number) => ({ kind: 'ModelResponse' as const, stepId, turn, attempt: 1,
    response: { id: `msg_${stepId}`, model: 'claude-test', content: [{ type: 'tool_use', id: `toolu_${stepId}`, name: 'shell', input: { cmd: 'true' } }], stop_reason: 'tool_use', usage: { input_tokens: 10, output_tokens: 5 } } });
  return {
    spec: { model: { name: 'claude-test', endpointRef: { name: 'nowhere' } }, prompt: 'Keep going.', tools: [SHELL], limits: { maxTurns: 1, onExhausted: 'AskForApproval' } },
    steps: [
      { id: 1, kind: 'Model', turn: 1, phase: 'Succeeded', outcome: 'Completed', attempt: 1, startedAt: iso(2 * MIN), finishedAt: iso(2 * MIN - 500), usage: usage(10, 5), stopReason: 'tool_use' },
      { id: 2, kind: 'Tool', turn: 1, phase: 'Succeeded', outcome: 'Completed', tool: 'shell', toolUseId: 'toolu_1', attempt: 1, startedAt: iso(2 * MIN - 600), finishedAt: iso(2 * MIN - 900) },
      { id: 3, kind: 'Model', turn: 2, phase: 'AwaitingApproval', attempt: 1 },
    ],
    entries: [answer(1, 1), { kind: 'ToolResult', stepId: 2, tool: 'shell', toolUseId: 'toolu_1', attempt: 1, output: '', isError: false, outcome: 'Completed', exitCode: 0, truncated: false }],
    status: {
      phase: 'AwaitingApproval', startTime: iso(2 * MIN), currentTurn: 1, waitingFor: 'approval: step 3 (budget)', usage: usage(10, 5),
      pendingApprovals: [{ step: 3, kind: 'Budget', tool: '', inputPreview: 'The run made 1 model call, reaching limits.maxTurns. Approving grants 1 more turn.', since: iso(MIN) }],
      ignoredDecisions: [{ annotation: 'approve.agentrun.dev/step-9', value: 'go', reason: 'step 9 does not exist in this run', at: iso(MIN / 2) }],
    },
  };
}

async function annotations(name: string): Promise<Record<string, string>> {
  const run = await custom.getNamespacedCustomObject({ ...API, namespace: ns, name }) as { metadata: { annotations?: Record<string, string> } };
  return run.metadata.annotations ?? {};
}

/** The decision annotations of a run (approve/reject/decided-by), without anything else. */
async function decisions(name: string): Promise<Record<string, string>> {
  return Object.fromEntries(Object.entries(await annotations(name)).filter(([k]) => /^(approve|reject|decided-by)\.agentrun\.dev\//.test(k)));
}

let alice = '', eve = '', mallory = '';

beforeAll(async () => {
  ns = await createNamespace('plugin');
  // plugin-alice may approve (the shipped ClusterRole); plugin-mallory may patch runs but not approve; eve may do
  // nothing. (Names of their own: another test file issues certificates for alice and mallory concurrently.)
  [alice, eve, mallory] = await Promise.all([userKubeconfig(cluster(), 'plugin-alice'), userKubeconfig(cluster(), 'eve'), userKubeconfig(cluster(), 'plugin-mallory')]);
  await kubectl(['create', 'rolebinding', 'alice-approves', '-n', ns, '--clusterrole=agentrun-approver', '--user=plugin-alice']);
  await kubectl(['create', 'role', 'run-editor', '-n', ns, '--verb=get,list,patch', '--resource=agentruns.agentrun.dev']);
  await kubectl(['create', 'rolebinding', 'mallory-edits', '-n', ns, '--role=run-editor', '--user=plugin-mallory']);
});
afterAll(async () => { await core.deleteNamespace({ name: ns }); });

describe('kubectl agentrun', () => {
  it('--help explains the plugin and each command, and a bad command line fails with one line', async () => {
    const top = await ok(['--help']);
    for (const command of ['list', 'describe NAME', 'approve NAME [STEP...]', 'reject NAME STEP', 'transcript NAME', 'logs NAME STEP']) expect(top.stdout).toContain(command);
    for (const flag of ['--kubeconfig', '--context', '--namespace']) expect(top.stdout).toContain(flag);
    for (const [command, flag] of [['list', '--all-namespaces'], ['approve', '--yes'], ['approve', '--comment'], ['reject', '--reason'], ['transcript', '--output'], ['logs', '--attempt']] as const) {
      expect((await ok([command, '--help'])).stdout, command).toContain(flag);
    }
    expect((await ok(['help', 'describe'])).stdout).toContain('kubectl agentrun describe NAME');
    expect(await fails(['frobnicate'])).toBe('error: unknown command "frobnicate" (one of list, describe, approve, reject, transcript, logs, ui, version) (see kubectl agentrun --help)');
    expect(await fails(['list', '--yes'])).toBe('error: unknown flag --yes (see kubectl agentrun list --help)');
    expect(await fails(['describe'])).toBe('error: missing NAME (see kubectl agentrun describe --help)');
    expect(await fails(['logs', 'x', 'three'])).toContain('"three" is not a step number');
  });

  it('list prints a kubectl-style table of the namespace, -A adds NAMESPACE, and the context namespace is the default', async () => {
    await seed('list-waiting', awaitingApproval('list-waiting'));
    await seed('list-done', succeeded('list-done'));
    const { stdout } = await ok(['list', '-n', ns]);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]?.split(/\s{3,}/)).toEqual(['NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE']);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.split(/\s{3,}/);
    expect(row('list-waiting')).toEqual(['list-waiting', 'AwaitingApproval', '5 tool/shell (+1)', '2', '5190', 'approval: steps 5, 6', expect.stringMatching(/^\d+s$/)]);
    expect(row('list-done')).toEqual(['list-done', 'Succeeded', '2', '280', expect.stringMatching(/^\d+s$/)]);
    // Columns line up as kubectl's do: a cell starts where its header starts.
    const phaseAt = lines[0]?.indexOf('PHASE');
    expect(lines.find((l) => l.startsWith('list-waiting '))?.indexOf('AwaitingApproval')).toBe(phaseAt);
    expect(lines.find((l) => l.startsWith('list-done '))?.indexOf('Succeeded')).toBe(phaseAt);

    const all = await ok(['list', '--all-namespaces']);
    const allLines = all.stdout.trimEnd().split('\n');
    expect(allLines[0]?.split(/\s{3,}/)).toEqual(['NAMESPACE', 'NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE']);
    expect(allLines.filter((l) => l.startsWith(`${ns} `)).map((l) => l.split(/\s+/)[1])).toEqual(expect.arrayContaining(['list-done', 'list-waiting']));

    // A kubeconfig whose context sits in the namespace: no -n needed, as with kubectl.
    const inNs = join(tmpdir(), `kubeconfig-plugin-${ns}`);
    const { stdout: admin } = await kubectl(['config', 'view', '--raw', '--minify']);
    await writeFile(inNs, admin.replace(/namespace: \S+/, `namespace: ${ns}`), { mode: 0o600 });
    try {
      expect((await ok(['list'], { kubeconfig: inNs })).stdout).toContain('list-waiting');
      expect((await ok(['list', '--kubeconfig', inNs, '--context', 'agentrun-local'], { kubeconfig: '/nonexistent' })).stdout).toContain('list-done');
      expect(await fails(['list', '--context', 'nope'], { kubeconfig: inNs })).toBe('error: context "nope" does not exist in the kubeconfig (contexts: agentrun-local)');
    } finally {
      await rm(inNs, { force: true });
    }

    const empty = await createNamespace('plugin-empty');
    const none = await plugin(['list', '-n', empty]);
    expect([none.code, none.stdout, none.stderr]).toEqual([0, '', `No agentruns found in ${empty} namespace.\n`]);
    await core.deleteNamespace({ name: empty });
  });

  it('describe summarises the run, its steps, the pending approvals with the commands to decide, and its Events', async () => {
    const uid = await seed('describe-me', awaitingApproval('describe-me'));
    await core.createNamespacedEvent({ namespace: ns, body: {
      metadata: { generateName: 'describe-me.' },
      involvedObject: { apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name: 'describe-me', namespace: ns, uid },
      type: 'Normal', reason: 'AwaitingApproval', message: 'Steps 5, 6 (shell) wait for a human decision.',
      firstTimestamp: new Date(), lastTimestamp: new Date(), count: 1, source: { component: 'agentrun-operator' },
    } });
    const { stdout } = await ok(['describe', 'describe-me', '-n', ns]);
    const line = (label: string) => stdout.split('\n').find((l) => l.startsWith(`${label}:`))?.slice(label.length + 1).trim();
    expect(line('Phase')).toBe('AwaitingApproval');
    expect(line('Message')).toBe('Turn 2: waiting for a human decision on steps 5, 6 (shell).');
    expect(line('Model')).toBe('claude-test (max_tokens 4096, ModelEndpoint nowhere)');
    expect(line('Tokens')).toBe('5190 total: input 1500, output 140, cache read 3200, cache write 350');
    expect(line('Waiting For')).toBe('approval: steps 5, 6');
    expect(line('Started')).toMatch(/^\d{4}-\d\d-\d\dT.*Z \(10m ago\)$/);
    expect(line('Completed')).toBe('<none>');

    const steps = stdout.slice(stdout.indexOf('Steps:'), stdout.indexOf('Pending Approvals:')).split('\n').slice(1, -1);
    expect(steps[0]?.trim().split(/\s{3,}/)).toEqual(['ID', 'KIND', 'TOOL', 'PHASE/OUTCOME', 'ATTEMPT', 'POD', 'TOKENS', 'DURATION', 'APPROVAL', 'WAIT']);
    const cells = (id: number) => steps.find((l) => l.trim().startsWith(`${id} `))?.trim().split(/\s{3,}/);
    expect(cells(1)).toEqual(['1', 'Model', 'Succeeded/Completed', '2', '2480', '2.5s', 'retried after Overloaded (attempt 1)']);
    expect(cells(2)).toEqual(['2', 'Tool', 'web_fetch', 'Succeeded/Completed', '1', 'describe-me-s2-a1', '1.2s']);
    expect(cells(3)).toEqual(['3', 'Tool', 'shell', 'Failed/ToolError', '1', 'describe-me-s3-a1', '800ms', 'Approved by alice: "ls is harmless"']);
    expect(cells(5)).toEqual(['5', 'Tool', 'shell', 'AwaitingApproval', '1', expect.stringMatching(/^3m\d*s?\+$/), expect.stringMatching(/^approval since \S+Z \(3m\d*s?\)$/)]);

    const pending = stdout.slice(stdout.indexOf('Pending Approvals:'), stdout.indexOf('Events'));
    expect(pending).toMatch(/STEP\s+TOOL\s+SINCE\s+INPUT/);
    expect(pending).toMatch(/\n {2}5\s+shell\s+\S+Z \(3m\d*s?\)\s+\{"cmd":"rm \/tmp\/a\.log"\}/);
    expect(pending).toContain(`To approve step 5:   kubectl agentrun approve describe-me 5 -n ${ns}\n`);
    expect(pending).toContain(`To reject step 6:    kubectl agentrun reject describe-me 6 -n ${ns} --reason '<why>'\n`);
    expect(pending).toContain(`To approve all:      kubectl agentrun approve describe-me -n ${ns}\n`);

    const events = stdout.slice(stdout.indexOf('Events'));
    expect(events).toMatch(/Normal\s+AwaitingApproval\s+\d+s\s+agentrun-operator\s+Steps 5, 6 \(shell\) wait for a human decision\./);
    expect(stdout).not.toContain('\x1b[');

    await seed('describe-retry', retrying());
    const retry = await ok(['describe', 'describe-retry', '-n', ns]);
    expect(retry.stdout).toMatch(/ 1 {3,}Model {3,}Running {3,}2 {3,}\S+ {3,}retry RateLimited \(attempt 1 failed\) next at \S+Z \(in (9m\d*s?|10m)\)/);
    expect(retry.stdout).toContain('Events:        <none>');

    await seed('describe-budget', askingForBudget());
    const budget = (await ok(['describe', 'describe-budget', '-n', ns])).stdout;
    expect(budget).toMatch(/\n {2}3 {3,}Model {3,}AwaitingApproval {3,}1 {3,}approval of a budget extension since \S+Z \(\d+s\)\n/);
    expect(budget).toMatch(/\n {2}3 {3,}budget extension {3,}\S+Z \(\d+s\) {3,}The run made 1 model call, reaching limits\.maxTurns\. Approving grants 1 more tu…\n/);
    expect(budget).toContain('Limits:        1 turn, no token budget,');
    expect(budget).toMatch(/Ignored Decisions:\n {2}ANNOTATION {3,}VALUE {3,}AGE {3,}WHY\n {2}approve\.agentrun\.dev\/step-9 {3,}go {3,}\d+s {3,}step 9 does not exist in this run\n/);
    expect((await plugin(['approve', 'describe-budget', '-n', ns])).stderr).toContain('re-run with --yes to approve step 3 (budget extension) without asking');
    expect((await ok(['transcript', 'describe-budget', '-n', ns])).stdout).toContain('(the run reached a limit and waits for approval of a budget extension before this call)');

    expect(await fails(['describe', 'no-such-run', '-n', ns])).toBe(`error: agentrun "no-such-run" not found in namespace "${ns}"`);
  });

  it('approve --yes sets approve.agentrun.dev/step-N on the chosen step only, as the current user', async () => {
    await seed('approve-one', awaitingApproval('approve-one'));
    const r = await ok(['approve', 'approve-one', '5', '--yes', '-n', ns], { kubeconfig: alice });
    expect(r.stdout).toContain(`agentrun "approve-one" in namespace "${ns}": approving 1 step of 2 awaiting approval`);
    expect(r.stdout).toMatch(/\n {2}5\s+shell\s+3m\d*s? ago\s+\{"cmd":"rm \/tmp\/a\.log"\}\n/);
    expect(r.stdout).not.toMatch(/\n {2}6\s+shell/);
    // The MutatingAdmissionPolicy records who the apiserver authenticated; the plugin only sets approve.….
    expect(await decisions('approve-one')).toEqual({
      'approve.agentrun.dev/step-5': 'approved via kubectl agentrun',
      'decided-by.agentrun.dev/step-5': 'plugin-alice',
    });
    expect(r.stdout).toContain('step 5 (shell) approved, decided by plugin-alice\n');
    expect(r.stderr).toBe('');
    // Deciding twice before the operator acted is refused, not silently overwritten.
    expect(await fails(['approve', 'approve-one', '5', '--yes', '-n', ns], { kubeconfig: alice }))
      .toBe('error: step 5 of agentrun "approve-one" already has a decision the operator has not acted on yet: approved (approve.agentrun.dev/step-5 by plugin-alice)');
  });

  it('approve without STEP approves every pending step, with --comment', async () => {
    await seed('approve-all', awaitingApproval('approve-all'));
    const r = await ok(['approve', 'approve-all', '--yes', '--comment', 'both files are old logs', '-n', ns]);
    expect(r.stdout).toContain('approving 2 steps\n');
    expect(await decisions('approve-all')).toEqual({
      'approve.agentrun.dev/step-5': 'both files are old logs', 'decided-by.agentrun.dev/step-5': 'admin',
      'approve.agentrun.dev/step-6': 'both files are old logs', 'decided-by.agentrun.dev/step-6': 'admin',
    });
  });

  it('approve refuses a step that is not pending, listing what is, and changes nothing', async () => {
    await seed('approve-wrong', awaitingApproval('approve-wrong'));
    expect(await fails(['approve', 'approve-wrong', '3', '--yes', '-n', ns]))
      .toBe('error: step 3 of agentrun "approve-wrong" is not awaiting approval (it is Failed, Approved by alice); awaiting approval: step 5 (shell), step 6 (shell)');
    expect(await fails(['approve', 'approve-wrong', '5', '99', '--yes', '-n', ns]))
      .toBe('error: step 99 of agentrun "approve-wrong" is not awaiting approval (the run has no step 99); awaiting approval: step 5 (shell), step 6 (shell)');
    expect(await decisions('approve-wrong')).toEqual({});

    await seed('approve-nothing', succeeded('approve-nothing'));
    expect(await fails(['approve', 'approve-nothing', '--yes', '-n', ns])).toBe('error: agentrun "approve-nothing" has no step awaiting approval (phase Succeeded)');
    expect(await fails(['approve', 'approve-nothing', '2', '--yes', '-n', ns]))
      .toBe('error: step 2 of agentrun "approve-nothing" is not awaiting approval (it is Succeeded); no step is awaiting approval');
  });

  it('approve without --yes and without a terminal refuses instead of waiting, and changes nothing', async () => {
    await seed('approve-notty', awaitingApproval('approve-notty'));
    const r = await plugin(['approve', 'approve-notty', '5', '-n', ns], { input: 'y\n' });
    expect(r.code).toBe(1);
    expect(r.stdout, 'it shows what would be approved').toContain('{"cmd":"rm /tmp/a.log"}');
    expect(r.stderr).toBe('error: not approved: confirmation needs a terminal and stdin is not one; re-run with --yes to approve step 5 (shell) without asking\n');
    expect(await decisions('approve-notty')).toEqual({});
  });

  it('approve on a terminal asks y/N: anything but y approves nothing, y approves', async () => {
    await seed('approve-tty', awaitingApproval('approve-tty'));
    // script(1) gives the plugin a pseudo-terminal and types what we send it.
    const onTty = (answer: string) => plugin([], {
      input: answer,
      command: ['script', '-qec', `${BIN} approve approve-tty 6 -n ${ns}`, '/dev/null'],
    });
    const no = await onTty('n\n');
    expect(no.stdout).toContain(`Approve step 6 (shell) of agentrun "approve-tty" in namespace "${ns}"? [y/N]`);
    expect(no.stdout).toContain('error: aborted: nothing was approved');
    expect(await decisions('approve-tty')).toEqual({});

    const yes = await onTty('y\n');
    expect(yes.stdout).toContain('step 6 (shell) approved, decided by admin');
    expect(await decisions('approve-tty')).toEqual({ 'approve.agentrun.dev/step-6': 'approved via kubectl agentrun', 'decided-by.agentrun.dev/step-6': 'admin' });
  });

  it('reject needs --reason, then sets reject.agentrun.dev/step-N to it', async () => {
    await seed('reject-me', awaitingApproval('reject-me', 'Fail'));
    expect(await fails(['reject', 'reject-me', '6', '-n', ns]))
      .toBe('error: --reason is required: say why the step is rejected (the run records it, and the model may read it) (see kubectl agentrun reject --help)');
    expect(await fails(['reject', 'reject-me', '-n', ns, '--reason', 'x'])).toBe('error: missing STEP (see kubectl agentrun reject --help)');
    expect(await decisions('reject-me')).toEqual({});
    const r = await ok(['reject', 'reject-me', '6', '--reason', 'b.log is still written to', '-n', ns], { kubeconfig: alice });
    expect(r.stdout).toContain('step 6 (shell) rejected, decided by plugin-alice\n');
    expect(r.stderr).toBe('note: this run has spec.approvals.onReject=Fail: rejecting a step fails the whole run\n');
    expect(await decisions('reject-me')).toEqual({ 'reject.agentrun.dev/step-6': 'b.log is still written to', 'decided-by.agentrun.dev/step-6': 'plugin-alice' });
  });

  it('a user without RBAC gets the apiserver\'s Forbidden message; one who may patch but not approve is stopped by the admission policy', async () => {
    await seed('guarded', awaitingApproval('guarded'));
    expect(await fails(['approve', 'guarded', '5', '--yes', '-n', ns], { kubeconfig: eve }))
      .toBe(`Error from server (Forbidden): agentruns.agentrun.dev "guarded" is forbidden: User "eve" cannot get resource "agentruns" in API group "agentrun.dev" in the namespace "${ns}"`);
    expect(await fails(['list', '-n', ns], { kubeconfig: eve }))
      .toBe(`Error from server (Forbidden): agentruns.agentrun.dev is forbidden: User "eve" cannot list resource "agentruns" in API group "agentrun.dev" in the namespace "${ns}"`);

    const denied = await fails(['approve', 'guarded', '5', '--yes', '-n', ns], { kubeconfig: mallory });
    expect(denied).toMatch(/^Error from server \(Forbidden\): /);
    expect(denied).toContain(`user plugin-mallory may not decide on AgentRun steps (approve.agentrun.dev/step-5): it needs the verb approve on agentruns/approval in namespace ${ns}, e.g. a RoleBinding to the ClusterRole agentrun-approver`);
    expect(await decisions('guarded')).toEqual({});
  });

  it('transcript prints the conversation from the journal: task, turns, tool calls and results, wrapped, no colour in a pipe', async () => {
    await seed('talk', awaitingApproval('talk'));
    const { stdout, stderr } = await ok(['transcript', 'talk', '-n', ns]);
    expect(stderr).toBe('');
    expect(stdout).not.toContain('\x1b[');
    const lines = stdout.split('\n');
    expect(Math.max(...lines.map((l) => Array.from(l).length))).toBeLessThanOrEqual(100);
    expect(lines[0]).toBe(`AgentRun ${ns}/talk · model claude-test · AwaitingApproval · 2 turns · 5190 tokens`);
    const order = [
      '── System prompt ', 'You are a careful janitor.',
      '── Task ', 'Clean up /tmp and report what was removed.',
      '── Turn 1 · assistant · step 1 · 1200 in, 80 out, 1000 cache read, 200 cache write ', 'I will read the cleanup policy and look at /tmp first.',
      '→ tool call web_fetch (toolu_01) · step 2', '"url": "https://example.com/policy"',
      '→ tool call shell (toolu_02) · step 3', '"cmd": "ls /tmp"',
      '── Tool result · web_fetch · step 2 · Completed · exit 0 ', 'Cleanup policy: files older than seven days',
      '[output truncated: the model got only the first limits.maxToolOutputBytes bytes]',
      '── Tool result · shell · step 3 · ERROR · ToolError · exit 1 ', '(approved by alice: ls is harmless)', 'a.log', 'b.log', 'ls: /tmp/locked: Permission denied',
      '── Turn 2 · assistant · step 4 ', 'Two old logs; removing them.', '→ tool call shell (toolu_03) · step 5', '"cmd": "rm /tmp/a.log"',
      '── Tool result · shell · step 5 ', '(awaiting approval for 3m',
      '── Tool result · shell · step 6 ', '(awaiting approval for 3m',
      '── Run AwaitingApproval ', 'waiting for approval: steps 5, 6',
    ];
    let at = 0;
    for (const text of order) {
      const found = lines.findIndex((l, i) => i >= at && l.includes(text));
      expect(found, `"${text}" after line ${at}:\n${stdout}`).toBeGreaterThanOrEqual(0);
      at = found;
    }
    // The long policy text is wrapped at word boundaries, not cut.
    const policy = lines.slice(lines.findIndex((l) => l.startsWith('Cleanup policy:'))).join(' ');
    expect(policy.replace(/\s+/g, ' ')).toContain(POLICY.trim());

    await seed('talk-done', succeeded('talk-done'));
    const done = await ok(['transcript', 'talk-done', '-n', ns]);
    expect(done.stdout).toMatch(/── Result ─+\nIt is 2030 on the node\.\n$/);
  });

  it('transcript -o json gives the run, the journal entries and the Messages API conversation', async () => {
    const scenario = awaitingApproval('talk-json');
    await seed('talk-json', scenario);
    const { stdout } = await ok(['transcript', 'talk-json', '-n', ns, '-o', 'json']);
    const doc = JSON.parse(stdout) as { run: Record<string, unknown>; steps: unknown[]; messages: { role: string; content: Record<string, unknown>[] }[] };
    expect(doc.run).toMatchObject({ name: 'talk-json', namespace: ns, phase: 'AwaitingApproval', model: 'claude-test', prompt: 'Clean up /tmp and report what was removed.', systemPrompt: 'You are a careful janitor.' });
    expect(doc.steps).toEqual(scenario.entries);
    expect(doc.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(doc.messages[0]?.content).toEqual([{ type: 'text', text: 'Clean up /tmp and report what was removed.' }]);
    expect(doc.messages[1]?.content).toEqual((scenario.entries[0] as Extract<JournalEntry, { kind: 'ModelResponse' }>).response.content);
    expect(doc.messages[2]?.content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_01', content: POLICY },
      { type: 'tool_result', tool_use_id: 'toolu_02', content: LS_OUTPUT, is_error: true },
    ]);
    // Steps 5 and 6 have no result yet: the operator would send the error it sends for a missing one.
    expect(doc.messages[4]?.content.map((c) => [c.tool_use_id, c.is_error])).toEqual([['toolu_03', true], ['toolu_04', true]]);
    expect(doc.messages[4]?.content.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });

    expect(await fails(['transcript', 'talk-json', '-n', ns, '-o', 'yaml'])).toBe('error: unknown output format "yaml" (text or json) (see kubectl agentrun transcript --help)');
  });

  it('transcript does not show a journal entry that does not match its digest in status, and says why on stderr', async () => {
    await seed('tampered', succeeded('tampered'), { tamper: 2 });
    const r = await ok(['transcript', 'tampered', '-n', ns]);
    expect(r.stderr).toMatch(/^warning: step 2: AgentRunJournal tampered-j2 has digest sha256:[0-9a-f]{64}, but status recorded sha256:[0-9a-f]{64}; not shown/);
    expect(r.stdout).not.toContain('TAMPERED');
    await seed('untampered', succeeded('untampered'));
    const clean = await ok(['transcript', 'untampered', '-n', ns]);
    expect(clean.stderr).toBe('');
    expect(clean.stdout).not.toContain('TAMPERED');
  });

  it('logs of a finished step whose pod is gone prints the journaled output and says so on stderr', async () => {
    await seed('gone', succeeded('gone'));
    const r = await ok(['logs', 'gone', '2', '-n', ns]);
    expect(r.stdout).toBe(DATE_OUTPUT);
    expect(r.stderr).toBe('pod gone-s2-a1 is gone; showing the output journaled for step 2 instead (what the model got, exit code 0)\n');
    expect(await fails(['logs', 'gone', '1', '-n', ns])).toBe(`error: step 1 of agentrun "gone" is a model call, which runs no pod; see kubectl agentrun transcript gone -n ${ns}`);
    expect(await fails(['logs', 'gone', '7', '-n', ns])).toBe('error: agentrun "gone" has no step 7 (steps 1-3)');
  });

  it('logs reads a tool pod that still exists through the pod log API', async () => {
    await seed('alive', succeeded('alive'));
    const emulator = await startTestNode(`node-${ns}`, [ns]);
    try {
      await core.createNamespacedPod({ namespace: ns, body: {
        metadata: { name: 'alive-s2-a1' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'tool', image: 'busybox:1.37', command: ['sh', '-c', 'echo "from the pod itself"; echo "line two"'] }] },
      } });
      await eventually('the tool pod to finish', async () => {
        const pod = await core.readNamespacedPod({ namespace: ns, name: 'alive-s2-a1' });
        return pod.status?.phase === 'Succeeded' ? pod : undefined;
      });
      const r = await ok(['logs', 'alive', '2', '-n', ns]);
      expect(r.stdout).toBe('from the pod itself\nline two\n');
      expect(r.stderr).toBe('');
    } finally {
      await emulator?.stop();
    }
  });
});
