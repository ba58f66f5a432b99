/**
 * Stopping real nodes and their kubelets, and putting the machine back as it was.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupHierarchies, mountPoints, removeNewIptablesChains, writeSysctl, HARD_CODED_PATHS } from '../host-snapshot.ts';
import { crictl } from './containerd-cli.ts';
import { alive } from '../daemons.ts';
import { execFileAsync, sh, stopPid } from './processes.ts';
import { DEFAULT_GROUP, readRealNodes, stateFile } from './state.ts';

/** Processes whose command line mentions `needle` (the shims of one containerd name its socket). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(join('/proc', entry, 'cmdline'), 'utf8')).split('\0').join(' ');
      if (cmdline.includes(needle)) out.push(Number(entry));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Processes still in a node's cgroups once its runtime is gone: containers whose shim died first,
 * or `runc init` of containers created but never started. All were started by this node.
 */
async function cgroupProcesses(cgroupRoot: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string): Promise<void> => {
    const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  for (const hierarchy of await cgroupHierarchies()) await walk(join(hierarchy, cgroupRoot));
  return [...pids];
}

async function removeCgroupTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(path, e.name));
  for (let i = 0; i < 20; i++) {
    try { await rmdir(path); return; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
}

async function otherClusterLinks(): Promise<string[]> {
  const out = await sh('ip', ['-o', 'link', 'show']).catch(() => '');
  return out.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => /^agentrun\d+$/.test(n));
}

/**
 * Stops every real node of the cluster in `stateDir` and puts the machine back as it was: pods
 * removed through the CRI, kubelet, containerd and leftover shims stopped by pid, mounts under the
 * state dir unmounted, cgroups, bridges and the dummy link deleted, sysctls restored, hard-coded
 * paths and iptables chains that did not exist before removed. Idempotent.
 */
export async function stopRealNodes(stateDir: string, group = DEFAULT_GROUP): Promise<void> {
  const info = await readRealNodes(stateDir, group);
  if (!info) return;
  const nodeDirs = info.nodes.map((n) => n.dir);
  for (const node of info.nodes) await stopPid(node.pids.kubelet);
  for (const node of info.nodes) {
    if (alive(node.pids.containerd)) {
      await crictl(node, ['rmp', '--all', '--force']).catch(() => undefined);
    }
    await stopPid(node.pids.containerd);
    // The shims outlive containerd by design; each names its containerd's socket.
    for (const pid of await pidsMentioning(node.containerdSocket)) await stopPid(pid, 2_000);
  }
  // Deepest mount first: pod volumes, netns and overlay mounts, then kubelet's bind mount of its root.
  const ours = (await mountPoints()).filter((m) => nodeDirs.some((d) => m === d || m.startsWith(`${d}/`)));
  for (const mount of ours.sort((a, b) => b.length - a.length)) {
    await execFileAsync('umount', ['-l', mount]).catch(() => undefined);
  }
  for (const node of info.nodes) {
    for (const pid of await cgroupProcesses(node.cgroupRoot)) await stopPid(pid, 0);
    for (const hierarchy of await cgroupHierarchies()) await removeCgroupTree(join(hierarchy, node.cgroupRoot));
    await execFileAsync('ip', ['link', 'del', node.bridge]).catch(() => undefined);
  }
  await execFileAsync('iptables', ['-t', 'nat', '-D', 'PREROUTING', '-j', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('iptables', ['-t', 'nat', '-F', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('iptables', ['-t', 'nat', '-X', `AGENTRUN-S${info.slot}`]).catch(() => undefined);
  await execFileAsync('ip', ['link', 'del', info.link]).catch(() => undefined);
  // Another cluster's real nodes still use the machine-wide sysctls and paths: the last one restores them.
  if ((await otherClusterLinks()).length > 0) {
    for (const d of nodeDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    await rm(stateFile(stateDir, group), { force: true });
    return;
  }
  for (const [name, value] of Object.entries(info.before.sysctls)) await writeSysctl(name, value).catch(() => undefined);
  for (const path of HARD_CODED_PATHS) {
    if (!info.before.paths.includes(path) && existsSync(path)) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
  await removeNewIptablesChains(info.before);
  for (const d of nodeDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  await rm(stateFile(stateDir, group), { force: true });
}
