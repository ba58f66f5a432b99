/**
 * What a real node may change on this machine, read before it starts and after it stops, so a
 * test can prove teardown restored everything: the sysctls kubelet and the CNI bridge set, network
 * links and addresses, mount points, top-level cgroups of every hierarchy, iptables chains, and
 * the hard-coded paths kubelet, containerd and CNI create. Root only (cgroups, iptables).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Sysctls kubelet sets at start (vm/kernel) and the bridge plugin sets (ip_forward). */
export const WATCHED_SYSCTLS = [
  'vm.overcommit_memory', 'vm.panic_on_oom', 'kernel.panic', 'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys', 'kernel.keys.root_maxbytes', 'net.ipv4.ip_forward', 'net.ipv4.conf.all.forwarding',
] as const;

/** Paths kubelet, containerd or the CNI plugins create whatever their configuration says. */
export const HARD_CODED_PATHS = [
  '/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/var/lib/cni', '/run/containerd', '/var/run/nri',
  '/opt/containerd', '/etc/cni', '/opt/cni', '/var/lib/containerd', '/run/netns', '/run/nri',
] as const;

const CGROUP_ROOT = '/sys/fs/cgroup';

export interface HostSnapshot {
  readonly sysctls: Record<string, string>;
  readonly links: string[];
  /** The bridge each enslaved link belongs to (pod veths → their node's bridge). */
  readonly linkMasters: Record<string, string>;
  readonly addresses: string[];
  readonly routes: string[];
  readonly mounts: string[];
  /** `<hierarchy>/<dir>` for each top-level directory of each cgroup hierarchy. */
  readonly cgroups: string[];
  /** `<tool> <table> <chain>` for each iptables chain. */
  readonly iptablesChains: string[];
  /** `<tool> <table> <rule>` for each iptables rule (no counters). */
  readonly iptablesRules: string[];
  readonly paths: string[];
}

function sysctlPath(name: string): string {
  return join('/proc/sys', ...name.split('.'));
}

export async function readSysctl(name: string): Promise<string> {
  return (await readFile(sysctlPath(name), 'utf8')).trim();
}

export async function writeSysctl(name: string, value: string): Promise<void> {
  await writeFile(sysctlPath(name), value);
}

async function lines(cmd: string, args: readonly string[]): Promise<string[]> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** Mount points, from /proc/self/mountinfo (field 5). */
export async function mountPoints(): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter(Boolean).map((l) => l.split(' ')[4] ?? '');
}

/** The cgroup v1 hierarchies mounted here (cgroup2's `unified` is listed too). */
export async function cgroupHierarchies(): Promise<string[]> {
  if (!existsSync(CGROUP_ROOT)) return [];
  const entries = await readdir(CGROUP_ROOT, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => join(CGROUP_ROOT, e.name));
}

async function topLevelCgroups(): Promise<string[]> {
  const out: string[] = [];
  for (const hierarchy of await cgroupHierarchies()) {
    const entries = await readdir(hierarchy, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) out.push(join(hierarchy, e.name));
  }
  return out.sort();
}

async function iptables(): Promise<{ chains: string[]; rules: string[] }> {
  const chains: string[] = [];
  const rules: string[] = [];
  for (const tool of ['iptables', 'ip6tables']) {
    let table = '';
    for (const line of await lines(`${tool}-save`, [])) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith(':')) chains.push(`${tool} ${table} ${line.slice(1).split(' ')[0] ?? ''}`);
      else if (line.startsWith('-A ')) rules.push(`${tool} ${table} ${line}`);
    }
  }
  return { chains: chains.sort(), rules: rules.sort() };
}

async function iptablesChains(): Promise<string[]> {
  return (await iptables()).chains;
}

/** Reads everything a real node may change on this machine. */
export async function takeHostSnapshot(): Promise<HostSnapshot> {
  const sysctls: Record<string, string> = {};
  for (const name of WATCHED_SYSCTLS) {
    try { sysctls[name] = await readSysctl(name); } catch { /* not on this kernel */ }
  }
  const linkLines = await lines('ip', ['-o', 'link', 'show']);
  const linkName = (l: string) => l.split(':')[1]?.trim().split('@')[0] ?? '';
  const linkMasters: Record<string, string> = {};
  for (const l of linkLines) {
    const master = / master (\S+)/.exec(l)?.[1];
    if (master) linkMasters[linkName(l)] = master;
  }
  return {
    sysctls,
    links: linkLines.map(linkName).sort(),
    linkMasters,
    addresses: (await lines('ip', ['-o', 'addr', 'show'])).map((l) => l.split(/\s+/).slice(1, 4).join(' ')).sort(),
    routes: (await lines('ip', ['route', 'show', 'table', 'all'])).sort(),
    mounts: (await mountPoints()).sort(),
    cgroups: await topLevelCgroups(),
    ...await iptables().then(({ chains, rules }) => ({ iptablesChains: chains, iptablesRules: rules })),
    paths: HARD_CODED_PATHS.filter((p) => existsSync(p)),
  };
}

/**
 * The network slots of OTHER local clusters with real nodes: a slot whose link `agentrun<N>`
 * existed before `before` was taken, or still exists when `after` is (each cluster removes its own
 * link at teardown). Other sessions on this machine may run such clusters at the same time.
 */
export function otherSlots(before: HostSnapshot, after: HostSnapshot): Set<string> {
  const slots = (snapshot: HostSnapshot) => snapshot.links.map((l) => /^agentrun(\d+)$/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  return new Set([...slots(before), ...slots(after)]);
}

/**
 * What differs between two snapshots, one line per difference (empty when identical). With
 * `ignoreSlots`, what belongs to those other clusters is left out (their links, bridges, pod
 * veths and their addresses and routes, cgroups, iptables chain, mounts under other state dirs),
 * and so are the machine-wide sysctls and paths while another cluster still runs.
 */
export function diffHostSnapshots(before: HostSnapshot, after: HostSnapshot, options: { ignoreSlots?: ReadonlySet<string>; ownStateDir?: string } = {}): string[] {
  const slots = options.ignoreSlots ?? new Set<string>();
  const masters = { ...before.linkMasters, ...after.linkMasters };
  const foreignLinks = new Set([...before.links, ...after.links].filter((l) => {
    const own = /^(?:agentrun|arbr)(\d+)/.exec(l)?.[1] ?? /^arbr(\d+)n/.exec(masters[l] ?? '')?.[1];
    return own !== undefined && slots.has(own);
  }));
  const foreign = (key: string, item: string): boolean => {
    if (slots.size === 0) return false;
    if (key === 'links' || key === 'addresses' || key === 'routes') return [...foreignLinks].some((l) => item.split(/\s+/).includes(l));
    if (key === 'cgroups') return [...slots].some((n) => item.endsWith(`/agentrun-${n}-n0`) || item.includes(`/agentrun-${n}-n`));
    if (key === 'iptablesChains' || key === 'iptablesRules') return [...slots].some((n) => item.includes(`AGENTRUN-S${n}`));
    if (key === 'mounts') return /\/nodes\/s\d+n\d+/.test(item) && !(options.ownStateDir !== undefined && item.startsWith(options.ownStateDir));
    return false;
  };
  const anotherRunning = after.links.some((l) => /^agentrun\d+$/.test(l));
  const diff: string[] = [];
  if (!anotherRunning) {
    for (const [name, value] of Object.entries(before.sysctls)) {
      if (after.sysctls[name] !== value) diff.push(`sysctl ${name}: ${value} → ${after.sysctls[name] ?? '(gone)'}`);
    }
  }
  const lists = ['links', 'addresses', 'routes', 'mounts', 'cgroups', 'iptablesChains', 'iptablesRules', ...(anotherRunning ? [] : ['paths'] as const)] as const;
  for (const key of lists) {
    const was = new Set(before[key]);
    const is = new Set(after[key]);
    for (const item of is) if (!was.has(item) && !foreign(key, item)) diff.push(`${key}: added ${item}`);
    for (const item of was) if (!is.has(item) && !foreign(key, item)) diff.push(`${key}: removed ${item}`);
  }
  return diff;
}

/** Flushes and deletes the iptables chains that exist now but not in `before`. */
export async function removeNewIptablesChains(before: HostSnapshot): Promise<void> {
  const was = new Set(before.iptablesChains);
  const now = await iptablesChains();
  const added = now.filter((c) => !was.has(c));
  for (const entry of added) {
    const [tool = '', table = '', chain = ''] = entry.split(' ');
    await execFileAsync(tool, ['-t', table, '-F', chain]).catch(() => undefined);
  }
  for (const entry of added) {
    const [tool = '', table = '', chain = ''] = entry.split(' ');
    await execFileAsync(tool, ['-t', table, '-X', chain]).catch(() => undefined);
  }
}
