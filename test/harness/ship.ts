/**
 * Helpers for the "ship it" tests: the real helm against the test cluster, a kubeconfig that
 * authenticates as a ServiceAccount (TokenRequest API), the operator's flags as the chart renders
 * them, and a small Prometheus text-format reader.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { binary, repoRoot, type ClusterInfo } from './control-plane.ts';
import { kubectl, parseYaml } from './kube.ts';

export const CHART = join(repoRoot, 'charts', 'agentrun-operator');

export interface HelmResult { readonly code: number; readonly stdout: string; readonly stderr: string }

/** Runs the real helm (v3.19, built by cluster:install) against the cluster; never throws. */
export function helm(cluster: ClusterInfo, args: readonly string[]): Promise<HelmResult> {
  return new Promise((resolve) => {
    execFile(binary('helm'), [...args, '--kubeconfig', cluster.kubeconfig], { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Like {@link helm}, but throws with helm's stderr when it fails. */
export async function helmOk(cluster: ClusterInfo, args: readonly string[]): Promise<string> {
  const result = await helm(cluster, args);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.code}):\n${result.stderr}`);
  return result.stdout;
}

/**
 * A kubeconfig that authenticates as `namespace/serviceAccount` with a bound token from the
 * TokenRequest API (`kubectl create token`): what the operator pod would get mounted.
 */
export async function serviceAccountKubeconfig(cluster: ClusterInfo, namespace: string, serviceAccount: string): Promise<string> {
  const { stdout: token } = await kubectl(['create', 'token', serviceAccount, '-n', namespace, '--duration=2h']);
  const ca = (await readFile(cluster.caCert)).toString('base64');
  const path = join(cluster.stateDir, `kubeconfig-sa-${namespace}-${serviceAccount}`);
  await writeFile(path, `apiVersion: v1
kind: Config
clusters:
- name: agentrun-local
  cluster: {server: ${cluster.server}, certificate-authority-data: ${ca}}
users:
- name: ${serviceAccount}
  user: {token: ${token.trim()}}
contexts:
- name: agentrun-local
  context: {cluster: agentrun-local, user: ${serviceAccount}, namespace: ${namespace}}
current-context: agentrun-local
`, { mode: 0o600 });
  return path;
}

/** The operator container of the Deployment in a rendered manifest. */
export function operatorContainer(manifest: string): { args: string[]; env: { name: string; value?: string }[]; serviceAccount: string } {
  const deployment: V1Deployment | undefined = parseYaml(manifest).find((o) => o.kind === 'Deployment');
  const spec = deployment?.spec?.template.spec;
  const container = spec?.containers.find((c) => c.name === 'operator');
  if (!spec || !container) throw new Error('no operator Deployment in the manifest');
  return { args: container.args ?? [], env: container.env ?? [], serviceAccount: spec.serviceAccountName ?? '' };
}

/** Replaces `--flag=value` (or appends it) in an argument list. */
export function withFlag(args: readonly string[], flag: string, value: string): string[] {
  return [...args.filter((a) => !a.startsWith(`--${flag}=`) && a !== `--${flag}`), `--${flag}=${value}`];
}
