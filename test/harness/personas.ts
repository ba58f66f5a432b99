/**
 * The people who share a namespace with the operator, as client-certificate users with ordinary
 * namespace RBAC: what docs/security.md calls the roles. Each persona's name carries a prefix so
 * test files running at once never share a certificate.
 */
import { userKubeconfig } from './control-plane.ts';
import { cluster, kubectl } from './kube.ts';

export interface Personas {
  /** May create, update and delete ConfigMaps, and read runs. Nothing else. */
  readonly configMapWriter: string;
  /** May create and edit runs (and AgentTools), not approve. */
  readonly editor: string;
  /** May update the status subresource of runs (a custom role someone might grant). */
  readonly statusWriter: string;
  /** Bound to the agentrun-approver ClusterRole. */
  readonly approver: string;
  /** Granted create on agentrunjournals explicitly (nobody is, by default). */
  readonly journalWriter: string;
  /** Usernames, for messages. */
  readonly names: Readonly<Record<'configMapWriter' | 'editor' | 'statusWriter' | 'approver' | 'journalWriter', string>>;
}

/** Creates the personas' Roles and RoleBindings in `namespace` and a kubeconfig for each. */
export async function personas(namespace: string, prefix: string): Promise<Personas> {
  const names = {
    configMapWriter: `${prefix}-cm-writer`, editor: `${prefix}-editor`, statusWriter: `${prefix}-status-writer`,
    approver: `${prefix}-approver`, journalWriter: `${prefix}-journal-writer`,
  };
  const role = async (name: string, rules: string[][]) => {
    await kubectl(['create', 'role', name, '-n', namespace, ...rules.flat()]);
  };
  await role('cm-writer', [['--verb=get,list,watch,create,update,patch,delete', '--resource=configmaps'], ['--verb=get,list,watch', '--resource=agentruns.agentrun.dev']]);
  await role('editor', [['--verb=get,list,watch,create,update,patch,delete', '--resource=agentruns.agentrun.dev,agenttools.agentrun.dev']]);
  await role('status-writer', [['--verb=get,list,watch,update,patch', '--resource=agentruns.agentrun.dev/status,agentruns.agentrun.dev']]);
  await role('journal-writer', [['--verb=get,list,create,update,patch,delete', '--resource=agentrunjournals.agentrun.dev'], ['--verb=get,list', '--resource=agentruns.agentrun.dev']]);
  const bind = async (binding: string, args: string[], user: string) => {
    await kubectl(['create', 'rolebinding', binding, '-n', namespace, ...args, `--user=${user}`]);
  };
  await bind('cm-writer', ['--role=cm-writer'], names.configMapWriter);
  await bind('editor', ['--role=editor'], names.editor);
  await bind('status-writer', ['--role=status-writer'], names.statusWriter);
  await bind('journal-writer', ['--role=journal-writer'], names.journalWriter);
  await bind('approver', ['--clusterrole=agentrun-approver'], names.approver);
  const kubeconfigOf = async (n: string) => userKubeconfig(cluster(), n);
  return {
    configMapWriter: await kubeconfigOf(names.configMapWriter), editor: await kubeconfigOf(names.editor),
    statusWriter: await kubeconfigOf(names.statusWriter), approver: await kubeconfigOf(names.approver),
    journalWriter: await kubeconfigOf(names.journalWriter), names,
  };
}

/** Runs kubectl as a persona; resolves to the apiserver's refusal text, or '' when it was allowed. */
export async function refusal(kubeconfig: string, args: readonly string[], input?: string): Promise<string> {
  return kubectl(args, { kubeconfig, ...(input !== undefined ? { input } : {}) }).then(() => '', (e: unknown) => String(e));
}
