/** The operator's flags for leader election and metrics: parsing, environment, defaults, refusals. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, usage } from '../../src/config.ts';
import { candidateIdentity, leaseNamespace } from '../../src/operator.ts';

const load = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const config = loadConfig(argv, env);
  if (!config) throw new Error('help');
  return config;
};

describe('leader election and metrics flags', () => {
  it('defaults like client-go, with leader election off and metrics on :8080', () => {
    const c = load([]);
    expect(c).toMatchObject({
      leaderElect: false, leaderElectionId: 'agentrun-operator', leaderElectionNamespace: undefined,
      leaderElectionLeaseDurationMs: 15_000, leaderElectionRenewDeadlineMs: 10_000, leaderElectionRetryPeriodMs: 2_000,
      metricsPort: 8080,
    });
  });

  it('takes --leader-elect as a bare flag, the rest as values, and environment variables', () => {
    expect(load(['--leader-elect', '--leader-election-namespace=ops', '--leader-election-id', 'my-lease', '--metrics-port=0'])).toMatchObject({
      leaderElect: true, leaderElectionNamespace: 'ops', leaderElectionId: 'my-lease', metricsPort: 0,
    });
    expect(load([], { AGENTRUN_LEADER_ELECT: 'true', AGENTRUN_LEADER_ELECTION_LEASE_DURATION: '30s', AGENTRUN_LEADER_ELECTION_RENEW_DEADLINE: '20s' }))
      .toMatchObject({ leaderElect: true, leaderElectionLeaseDurationMs: 30_000, leaderElectionRenewDeadlineMs: 20_000 });
    // A flag wins over the environment.
    expect(load(['--metrics-port', '9090'], { AGENTRUN_METRICS_PORT: '7070' }).metricsPort).toBe(9090);
  });

  it('refuses timings that could give two leaders, with what to fix', () => {
    expect(() => load(['--leader-election-renew-deadline', '20s'])).toThrow(/--leader-election-lease-duration: must be longer than --leader-election-renew-deadline/);
    expect(() => load(['--leader-election-retry-period', '9s'])).toThrow(/--leader-election-renew-deadline: must be longer than 1.2 × --leader-election-retry-period/);
    expect(() => load(['--metrics-port', '70000'])).toThrow(ConfigError);
    expect(() => load(['--leader-election-id', 'Not_A_Name'])).toThrow(/--leader-election-id: must be a DNS subdomain/);
    expect(() => load(['--leader-elect=yes'])).toThrow(ConfigError);
    expect(() => load([], { AGENTRUN_LEADER_ELECT: 'yes' })).toThrow(/--leader-elect: must be true or false/);
  });

  it('lists every new flag in --help', () => {
    for (const flag of ['--leader-elect ', '--leader-election-namespace', '--leader-election-id', '--leader-election-lease-duration',
      '--leader-election-renew-deadline', '--leader-election-retry-period', '--metrics-port']) expect(usage()).toContain(flag);
  });

  it('puts the Lease in the flag\'s namespace, else the pod\'s, else default; identities are unique per process', () => {
    const c = load([]);
    expect(leaseNamespace(load(['--leader-election-namespace', 'ops']), () => 'from-file')).toBe('ops');
    expect(leaseNamespace(c, () => 'from-file\n')).toBe('from-file');
    expect(leaseNamespace(c, () => { throw new Error('ENOENT'); })).toBe('default');
    const a = candidateIdentity({ POD_NAME: 'agentrun-operator-7c9d-x2' });
    expect(a).toMatch(/^agentrun-operator-7c9d-x2_[0-9a-f]{8}$/);
    expect(candidateIdentity({ POD_NAME: 'agentrun-operator-7c9d-x2' })).not.toBe(a);
  });
});
