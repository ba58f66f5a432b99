/**
 * Names of the objects a run owns (the idempotency keys of its side effects) and the tool Pod
 * buildToolPod() makes: secure by default.
 */
import { describe, expect, it } from 'vitest';
import { boundedName, journalName, runLabelValue, shortHash, toolPodName, toolsJournalName } from '../../src/core/naming.ts';
import { buildToolPod, INPUT_ANNOTATION, type ToolPodRequest } from '../../src/core/tool-pod.ts';
import { resolvedTools, RUN_UID, spec } from '../harness/builders.ts';

/** A DNS-1123 label: what a pod name must be to serve as a hostname, and what a label value may be. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const LONG_A = `a${'-research-kubernetes-history'.repeat(8)}-alpha`; // 240 characters
const LONG_B = `a${'-research-kubernetes-history'.repeat(8)}-bravo`; // same first 234

describe('names', () => {
  it('short names are readable and exact', () => {
    expect(toolPodName('research', 3, 1)).toBe('research-s3-a1');
    expect(toolPodName('research', 12, 2)).toBe('research-s12-a2');
    expect(journalName('research', 7)).toBe('research-j7');
    expect(toolsJournalName('research')).toBe('research-tools');
    expect(runLabelValue('research')).toBe('research');
  });

  it.each([
    ['toolPodName', (run: string) => toolPodName(run, 1234, 10), '-s1234-a10'],
    ['journalName', (run: string) => journalName(run, 1999), '-j1999'],
    ['toolsJournalName', (run: string) => toolsJournalName(run), '-tools'],
    ['runLabelValue', (run: string) => runLabelValue(run), ''],
  ])('%s of a long run: at most 63 characters, a DNS label, suffix kept, stable, distinct', (_fn, name, suffix) => {
    const a = name(LONG_A);
    const b = name(LONG_B);
    expect(LONG_A.length).toBeGreaterThan(200);
    for (const n of [a, b]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(DNS_LABEL);
      expect(n.endsWith(suffix)).toBe(true);
      expect(n.startsWith('a-research-kubernetes')).toBe(true);
    }
    expect(name(LONG_A)).toBe(a);
    expect(a).not.toBe(b);
  });

  it('a name of exactly 63 characters is kept; 64 is shortened with the hash of the full name', () => {
    const base63 = 'r'.repeat(57); // + '-s1-a1' = 63
    expect(toolPodName(base63, 1, 1)).toBe(`${base63}-s1-a1`);
    const base64 = 'r'.repeat(58);
    const shortened = toolPodName(base64, 1, 1);
    expect(shortened).toHaveLength(63);
    expect(shortened).toContain(shortHash(`${base64}-s1-a1`));
  });

  it('never leaves a "-" or "." before the hash', () => {
    // 63 - '-s1-a1' - 8 hex - '-' = 48 characters are kept: the cut lands right after '-.-'.
    const base = `${'x'.repeat(45)}-.-${'y'.repeat(30)}`;
    const n = boundedName(base, '-s1-a1');
    expect(n).toBe(`${'x'.repeat(45)}-${shortHash(`${base}-s1-a1`)}-s1-a1`);
    expect(n).toMatch(DNS_LABEL);
  });

  it('steps and attempts of one long run get distinct names', () => {
    const names = new Set<string>();
    for (let step = 1; step <= 30; step++) for (let attempt = 1; attempt <= 4; attempt++) names.add(toolPodName(LONG_A, step, attempt));
    expect(names.size).toBe(120);
  });

  it('shortHash is FNV-1a 32 bit, 8 hex digits', () => {
    expect(shortHash('')).toBe('811c9dc5');
    expect(shortHash('a')).toBe('e40c292c');
    expect(shortHash('foobar')).toBe('bf9cf968');
  });
});

describe('buildToolPod', () => {
  const runSpec = spec({ toolPodDefaults: { serviceAccountName: 'tools', nodeSelector: { pool: 'agents' } } });
  const [first, second] = resolvedTools(runSpec);
  if (!first?.container || !second?.container) throw new Error('the base spec has two pod tools');
  const webFetch = { ...first, container: first.container }, shell = { ...second, container: second.container };
  const request = (patch: Partial<ToolPodRequest> = {}): ToolPodRequest => ({
    run: { name: 'research', namespace: 'agents', uid: RUN_UID, spec: runSpec },
    stepId: 4, attempt: 2, podName: 'research-s4-a2', tool: webFetch, input: { url: 'https://kubernetes.io' },
    ...patch,
  });
  const pod = buildToolPod(request());
  const container = pod.spec?.containers[0];

  it('is owned by the run, named and labelled deterministically', () => {
    expect(pod.metadata).toMatchObject({
      name: 'research-s4-a2', namespace: 'agents',
      labels: {
        'app.kubernetes.io/managed-by': 'agentrun-operator', 'app.kubernetes.io/component': 'tool',
        'agentrun.dev/run': 'research', 'agentrun.dev/step': '4', 'agentrun.dev/attempt': '2',
      },
      annotations: { [INPUT_ANNOTATION]: '{"url":"https://kubernetes.io"}', 'agentrun.dev/tool': 'web_fetch' },
      ownerReferences: [{ apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', name: 'research', uid: RUN_UID, controller: true, blockOwnerDeletion: true }],
    });
  });

  it('a long run name still gives a valid run label', () => {
    const long = buildToolPod(request({ run: { name: LONG_A, namespace: 'agents', uid: RUN_UID, spec: runSpec } }));
    const label = long.metadata?.labels?.['agentrun.dev/run'] ?? '';
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(DNS_LABEL);
  });

  it('runs once, with no service-account token, no service links and the tool timeout as its deadline', () => {
    expect(pod.spec).toMatchObject({
      restartPolicy: 'Never', automountServiceAccountToken: false, enableServiceLinks: false,
      activeDeadlineSeconds: 120, serviceAccountName: 'tools', nodeSelector: { pool: 'agents' },
    });
    expect(buildToolPod(request({ tool: shell })).spec?.activeDeadlineSeconds).toBe(600);
  });

  it('is non-root with RuntimeDefault seccomp, read-only root, no privilege escalation and no capabilities', () => {
    expect(pod.spec?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec?.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container?.securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, privileged: false, capabilities: { drop: ['ALL'] },
    });
    expect(pod.spec?.hostNetwork ?? false).toBe(false);
    expect(pod.spec?.hostPID ?? false).toBe(false);
  });

  it('has resource limits by default, and the tool\'s own when it sets them', () => {
    expect(container?.resources?.limits).toEqual({ cpu: '500m', memory: '256Mi' });
    const own = buildToolPod(request({ tool: { ...webFetch, container: { ...webFetch.container, resources: { limits: { memory: '1Gi' } } } } }));
    expect(own.spec?.containers[0]?.resources?.limits).toEqual({ memory: '1Gi' });
  });

  it('mounts the input read-only from its annotation and gives the tool a small writable /tmp', () => {
    expect(container?.volumeMounts).toEqual([{ name: 'input', mountPath: '/agentrun/input', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }]);
    expect(pod.spec?.volumes).toEqual([
      { name: 'input', downwardAPI: { items: [{ path: 'input.json', fieldRef: { fieldPath: `metadata.annotations['${INPUT_ANNOTATION}']` } }] } },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
    ]);
  });

  it('passes the input and an idempotency key that is the same for every attempt of a step', () => {
    const env = (p: typeof pod) => Object.fromEntries((p.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env(pod)).toMatchObject({
      AGENTRUN_INPUT: '{"url":"https://kubernetes.io"}', AGENTRUN_INPUT_FILE: '/agentrun/input/input.json',
      AGENTRUN_IDEMPOTENCY_KEY: `${RUN_UID}/4`, AGENTRUN_RUN: 'research', AGENTRUN_STEP: '4', AGENTRUN_ATTEMPT: '2', AGENTRUN_TOOL: 'web_fetch',
    });
    const attempt3 = buildToolPod(request({ attempt: 3, podName: 'research-s4-a3' }));
    expect(env(attempt3).AGENTRUN_IDEMPOTENCY_KEY).toBe(env(pod).AGENTRUN_IDEMPOTENCY_KEY);
    expect(env(attempt3).AGENTRUN_ATTEMPT).toBe('3');
    expect(env(buildToolPod(request({ stepId: 5 }))).AGENTRUN_IDEMPOTENCY_KEY).toBe(`${RUN_UID}/5`);
  });

  it('runs the tool\'s image and command, with its own env first', () => {
    const withEnv = buildToolPod(request({ tool: { ...shell, container: { ...shell.container, env: [{ name: 'LANG', value: 'C' }] } } }));
    const c = withEnv.spec?.containers[0];
    expect(c).toMatchObject({ name: 'tool', image: 'busybox', command: ['sh', '-c'], terminationMessagePolicy: 'FallbackToLogsOnError' });
    expect(c?.env?.[0]).toEqual({ name: 'LANG', value: 'C' });
  });
});
