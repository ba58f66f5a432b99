/**
 * The API as the real apiserver enforces it: CRDs install and become Established, the examples
 * are accepted, and every manifest in the invalid corpus is refused with a message that says
 * what to fix (the unit suite checks zod refuses the same corpus).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { API_VERSION } from '../../src/api/group.ts';
import { agentRunStatus } from '../../src/api/agent-run.ts';
import { repoRoot } from '../harness/control-plane.ts';
import { clients, createNamespace, kubectl } from '../harness/kube.ts';
import { invalidCases, merge, validRunSpec, validToolSpec } from '../fixtures/invalid-manifests.ts';

const { core, custom } = clients();
let namespace = '';
const plural = { AgentRun: 'agentruns', AgentTool: 'agenttools' } as const;

beforeAll(async () => { namespace = await createNamespace('api'); });
afterAll(async () => { await core.deleteNamespace({ name: namespace }); });

function create(kind: 'AgentRun' | 'AgentTool', name: string, spec: Record<string, unknown>) {
  return custom.createNamespacedCustomObject({
    group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: plural[kind],
    body: { apiVersion: API_VERSION, kind, metadata: { name }, spec },
  });
}

/** The message of a refused request, as kubectl would print it. */
async function refusal(request: Promise<unknown>): Promise<string> {
  try {
    await request;
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return typeof body === 'string' ? (JSON.parse(body) as { message: string }).message : String(error);
  }
  throw new Error('the apiserver accepted it');
}

describe('CRDs', () => {
  it('are Established with the names, short names and category users type', async () => {
    const { stdout } = await kubectl(['get', 'crd', 'agentruns.agentrun.dev', 'agenttools.agentrun.dev', '-o',
      'jsonpath={range .items[*]}{.spec.names.shortNames[0]} {.spec.names.categories[0]} {.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}']);
    expect(stdout.trim().split('\n')).toEqual(['ar agents True', 'at agents True']);
  });

  it('accept every manifest in deploy/examples (server-side dry run)', async () => {
    const dir = join(repoRoot, 'deploy', 'examples');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
    for (const file of files) {
      const { stdout } = await kubectl(['apply', '--dry-run=server', '-n', namespace, '-f', join(dir, file)]);
      expect(stdout, file).toContain('(server dry run)');
    }
  });

  it('show the columns a human needs in kubectl get agentruns', async () => {
    await create('AgentRun', 'columns', validRunSpec());
    const { stdout } = await kubectl(['get', 'agentruns', '-n', namespace]);
    expect(stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'PHASE', 'STEP', 'TURN', 'TOKENS', 'WAITING-FOR', 'AGE']);
    const { stdout: byCategory } = await kubectl(['get', 'agents', '-n', namespace, '-o', 'name']);
    expect(byCategory).toContain('agentrun.agentrun.dev/columns');
  });

  it('default the spec on the server as zod does', async () => {
    const created = await create('AgentRun', 'defaults', validRunSpec()) as { spec: Record<string, unknown> };
    expect(created.spec).toMatchObject({
      limits: { maxTurns: 20, timeout: '1h', approvalTimeout: '24h', maxParallelTools: 4, maxToolOutputBytes: 65536, onExhausted: 'Fail' },
      modelRetry: { initialBackoff: '1s', backoffFactor: 2, maxBackoff: '100s' },
      suspend: false, cancel: false,
      model: { maxTokens: 4096, endpointRef: { name: 'anthropic' } },
    });
  });

  it('keep every status field the operator writes (nothing is pruned)', async () => {
    await create('AgentRun', 'status', validRunSpec());
    const status = agentRunStatus.parse({
      phase: 'Running', observedGeneration: 1, startTime: '2026-01-01T00:00:00Z', currentTurn: 2, currentStep: '3 tool/echo',
      waitingFor: 'tool pod', message: 'running', result: 'r',
      conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Running', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      usage: { inputTokens: 1, outputTokens: 2, cacheReadInputTokens: 3, cacheCreationInputTokens: 4, totalTokens: 10 },
      steps: [{ id: 1, kind: 'Tool', turn: 1, phase: 'Succeeded', tool: 'echo', toolUseId: 'toolu_1', attempt: 2, podName: 'p',
        startedAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:01Z', journal: { name: 'cm', digest: 'sha256:abc' },
        usage: { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, totalTokens: 2 },
        stopReason: 'tool_use', outcome: 'Completed', message: 'ok',
        retry: { attempt: 1, errorClass: 'Overloaded', errorMessage: '529', nextRetryAt: '2026-01-01T00:00:02Z' },
        approval: { decision: 'Approved', by: 'alice', at: '2026-01-01T00:00:00Z', comment: 'ok' } }],
      pendingApprovals: [{ step: 4, tool: 'echo', inputPreview: '{}', since: '2026-01-01T00:00:00Z' }],
    });
    const current = await custom.getNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: 'agentruns', name: 'status' }) as object;
    const written = await custom.replaceNamespacedCustomObjectStatus({
      group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: 'agentruns', name: 'status', body: { ...current, status },
    }) as { status: unknown };
    expect(written.status).toEqual(status);
  });
});

describe('the apiserver refuses invalid manifests with a message that says what to fix', () => {
  it.each(invalidCases.map((c, i) => ({ ...c, index: i })))('$name', async (c) => {
    const name = `invalid-${c.index}`;
    const base = c.kind === 'AgentRun' ? validRunSpec() : validToolSpec();
    const spec = merge(base, c.spec ?? {});
    let message: string;
    if (c.update) {
      const created = await create(c.kind, name, spec) as { spec: unknown };
      message = await refusal(kubectl(['patch', c.kind.toLowerCase(), name, '-n', namespace, '--type', 'merge', '-p', JSON.stringify({ spec: c.update })]));
      const after = await custom.getNamespacedCustomObject({ group: 'agentrun.dev', version: 'v1alpha1', namespace, plural: plural[c.kind], name }) as { spec: unknown };
      expect(after.spec, 'a refused change leaves the run as it was').toEqual(created.spec);
    } else {
      message = await refusal(create(c.kind, name, spec));
    }
    for (const words of c.apiserverSays) expect(message).toContain(words);
  });
});
