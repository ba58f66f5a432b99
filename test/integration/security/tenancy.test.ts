/**
 * A run can do nothing its creator could not: tried as a user who may create AgentRuns and
 * nothing else. The apiserver records who created a run; the operator asks it (SubjectAccessReview)
 * whether that user may use the ModelEndpoint and every Secret a tool reads, before anything runs.
 * Before ModelEndpoints and these checks, a run named any URL and Secret it liked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATED_BY_GROUPS, CREATED_BY_USER } from '../../../src/api/creator.ts';
import {
  MOCK_ENDPOINT, executions, finished, getRun, livePods, recordingTool, startAgentEnv, waitForRun, type AgentEnv,
} from '../../harness/agent-env.ts';
import { userKubeconfig } from '../../harness/control-plane.ts';
import { cluster, kubectl } from '../../harness/kube.ts';
import { text, toolUse } from '../../harness/mock-model-server.ts';
import { refusal } from '../../harness/personas.ts';

let env: AgentEnv;
let creator = ''; // may create runs; nothing else
let modelUser = ''; // may create runs and use the endpoint; may not read Secrets
beforeAll(async () => {
  env = await startAgentEnv('sec-tenancy');
  const ns = env.namespace;
  await kubectl(['create', 'role', 'run-creator', '-n', ns, '--verb=get,list,watch,create', '--resource=agentruns.agentrun.dev']);
  // kubectl create role knows only the built-in verbs: `use` is ours, so the Role is applied as an object.
  await kubectl(['apply', '-n', ns, '-f', '-'], { input: JSON.stringify({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'model-user' },
    rules: [{ apiGroups: ['agentrun.dev'], resources: ['modelendpoints'], resourceNames: [MOCK_ENDPOINT], verbs: ['use'] }],
  }) });
  await kubectl(['create', 'rolebinding', 'run-creators', '-n', ns, '--role=run-creator', '--group=st-creators']);
  await kubectl(['create', 'rolebinding', 'model-users', '-n', ns, '--role=model-user', '--group=st-model-users']);
  await kubectl(['create', 'secret', 'generic', 'db-password', '-n', ns, '--from-literal=password=hunter2']);
  creator = await userKubeconfig(cluster(), 'st-creator', ['st-creators']);
  modelUser = await userKubeconfig(cluster(), 'st-model-user', ['st-creators', 'st-model-users']);
});
afterAll(async () => { await env.close(); });

const run = (name: string, key: string, spec: Record<string, unknown> = {}) => JSON.stringify({
  apiVersion: 'agentrun.dev/v1alpha1', kind: 'AgentRun', metadata: { name },
  spec: { model: { name: 'claude-test', endpointRef: { name: MOCK_ENDPOINT } }, prompt: `${key} go`, ...spec },
});
const create = (kubeconfig: string, body: string) => kubectl(['create', '-n', env.namespace, '-f', '-'], { kubeconfig, input: body });
const failedWith = async (name: string) => {
  const r = await waitForRun(env.namespace, name, 'finished', finished);
  return { phase: r.status?.phase, reason: r.status?.conditions?.find((c) => c.type === 'Succeeded')?.reason, message: r.status?.message ?? '' };
};

describe('a run can do nothing its creator could not', () => {
  it('a run names no URL: a model base URL on a run is refused by the apiserver', async () => {
    const body = JSON.parse(run('own-url', '[st-url]')) as { spec: { model: Record<string, unknown> } };
    body.spec.model.baseURL = 'http://attacker.example';
    expect(await refusal(creator, ['create', '-n', env.namespace, '-f', '-'], JSON.stringify(body))).toContain('unknown field "spec.model.baseURL"');
  });

  it('without use on the ModelEndpoint the run fails AccessDenied before any model call', async () => {
    const key = '[st-no-endpoint]';
    env.model.script(key, [{ content: [text('should never be asked')] }]);
    await create(creator, run('no-endpoint', key));
    const r = await getRun(env.namespace, 'no-endpoint');
    expect(r.metadata.annotations?.[CREATED_BY_USER]).toBe('st-creator');
    expect(r.metadata.annotations?.[CREATED_BY_GROUPS]).toContain('st-creators');
    expect(await failedWith('no-endpoint')).toMatchObject({ phase: 'Failed', reason: 'AccessDenied' });
    expect((await failedWith('no-endpoint')).message).toContain(`The run's creator st-creator may not use modelendpoints.agentrun.dev/${MOCK_ENDPOINT} (for spec.model.endpointRef)`);
    expect(env.model.requests(key)).toHaveLength(0);
  });

  it('a tool that reads a Secret its creator may not read never gets a pod', async () => {
    const key = '[st-secret]';
    env.model.script(key, [{ content: [toolUse('query', { q: 'x' })] }, { content: [text('done')] }]);
    await create(modelUser, run('steal-secret', key, { tools: [{ name: 'query', description: 'Query the DB', container: {
      ...recordingTool(env.execLog, 'echo "$PASSWORD"'), env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db-password', key: 'password' } } }],
    } }] }));
    const result = await failedWith('steal-secret');
    expect(result).toMatchObject({ phase: 'Failed', reason: 'AccessDenied' });
    expect(result.message).toContain('may not get secrets/db-password (for tool query (env PASSWORD))');
    expect(result.message).not.toContain('hunter2');
    expect(env.model.requests(key)).toHaveLength(0);
    expect(await livePods(env.namespace)).toEqual([]);
    expect(await executions(env.execLog)).toEqual([]);
  });

  it('with use on the endpoint and no Secret, the same user\'s run succeeds', async () => {
    const key = '[st-ok]';
    env.model.script(key, [{ content: [text('fine')] }]);
    await create(modelUser, run('allowed', key));
    const r = await waitForRun(env.namespace, 'allowed', 'finished', finished);
    expect(r.status?.phase).toBe('Succeeded');
    expect(r.metadata.annotations?.[CREATED_BY_USER]).toBe('st-model-user');
  });

  it('the recorded creator cannot be forged at creation nor changed later', async () => {
    const body = JSON.parse(run('forged-creator', '[st-forged]')) as { metadata: { annotations?: Record<string, string> } };
    body.metadata.annotations = { [CREATED_BY_USER]: 'admin', [CREATED_BY_GROUPS]: 'system:masters' };
    await create(creator, JSON.stringify(body));
    const r = await getRun(env.namespace, 'forged-creator');
    expect(r.metadata.annotations?.[CREATED_BY_USER]).toBe('st-creator');
    expect(r.metadata.annotations?.[CREATED_BY_GROUPS]).not.toContain('system:masters');
    // Even an admin may not rewrite who created a run.
    expect(await refusal(cluster().kubeconfig, ['annotate', '--overwrite', 'agentrun', 'forged-creator', '-n', env.namespace, `${CREATED_BY_USER}=admin`]))
      .toContain('record who created the run');
  });
});
