/**
 * The MCPServer reconciler and its SDK discovery adapter against the real server-everything, with
 * the status writer and the Secret reader replaced by recorders: what status says when the server answers, when it is
 * killed, when a header's Secret is missing, and that a header's value never reaches status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MCPServerStatus } from '../../src/api/mcp-server.ts';
import { SecretUnavailableError } from '../../src/adapters/kube/secrets.ts';
import { MCPSDKDiscovery } from '../../src/adapters/mcp/discovery.ts';
import { MCPServerReconciler, type MCPServerObject } from '../../src/reconciler/mcp-server-reconciler.ts';
import type { SecretReader } from '../../src/ports.ts';
import { startEverythingServer, type EverythingServer } from '../harness/mcp-server.ts';

const TOKEN = 'Bearer s3cret-token-value';
let server: EverythingServer;
beforeAll(async () => { server = await startEverythingServer(); });
afterAll(async () => { await server.stop(); });

function harness(spec: Record<string, unknown>, secrets: SecretReader) {
  const obj: MCPServerObject = { metadata: { name: 'ev', namespace: 'ns', generation: 1, resourceVersion: '1' }, spec };
  const writes: MCPServerStatus[] = [];
  const events: string[] = [];
  const reconciler = new MCPServerReconciler({
    get: () => obj,
    status: { write: (_ns, _name, _rv, status) => { writes.push(status); obj.status = status; return Promise.resolve(); } },
    discovery: new MCPSDKDiscovery(secrets), clock: { now: () => Date.now() }, log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    enqueue: () => undefined,
    events: { emit: (on, type, reason, message) => { events.push(`${on.kind ?? ''} ${on.name} ${type} ${reason}: ${message}`); return Promise.resolve(); } },
  });
  return { obj, writes, events, reconciler };
}

const ready = (s: MCPServerStatus | undefined) => s?.conditions?.find((c) => c.type === 'Ready');

describe('MCPServer reconciler (real server-everything)', () => {
  it('lists the tools into status with serverInfo, then says ConnectFailed (with the URL) once the server is gone', async () => {
    const own = await startEverythingServer();
    const secrets: SecretReader = { read: () => Promise.resolve(TOKEN) };
    const h = harness({ url: own.url, headers: [{ name: 'Authorization', secretKeyRef: { name: 'tok', key: 'authorization' } }] }, secrets);
    try {
      const result = await h.reconciler.reconcile('ns/ev');
      expect(result).toEqual({ requeueAfterMs: 300_000 });
      expect(ready(h.obj.status)).toMatchObject({ status: 'True', reason: 'Connected' });
      expect(h.obj.status?.serverInfo).toEqual({ name: 'mcp-servers/everything', version: expect.any(String) as string, protocolVersion: '2025-11-25' });
      expect(h.obj.status?.discoveredTools?.map((t) => t.name)).toContain('trigger-long-running-operation');
      expect(h.obj.status?.toolCount).toBe(h.obj.status?.discoveredTools?.length);
      // Nothing changed and the interval has not passed: no list, no write.
      await h.reconciler.reconcile('ns/ev');
      expect(h.writes).toHaveLength(1);

      await own.kill();
      h.obj.metadata.generation = 2; // as after an edit: listed again now
      await h.reconciler.reconcile('ns/ev');
      // The open session fails its tools/list; the next reconcile cannot even connect.
      expect(ready(h.obj.status)).toMatchObject({ status: 'False', reason: expect.stringMatching(/^(ListToolsFailed|ConnectFailed)$/) as string });
      expect(ready(h.obj.status)?.message).toContain(own.url);
      await h.reconciler.reconcile('ns/ev');
      expect(ready(h.obj.status)).toMatchObject({ status: 'False', reason: 'ConnectFailed' });
      expect(ready(h.obj.status)?.message).toContain(`connecting to ${own.url} failed`);
      // The tools listed before stay (runs that start meanwhile still see them).
      expect(h.obj.status?.discoveredTools?.length).toBeGreaterThan(0);
      expect(JSON.stringify(h.writes)).not.toContain('s3cret');
      // One Event per turn of Ready (or change of its reason), not one per failed attempt.
      expect(h.events.map((e) => e.split(':')[0])).toEqual([
        'MCPServer ev Normal Connected', expect.stringMatching(/^MCPServer ev Warning (ListToolsFailed|ConnectFailed)$/) as string,
        ...(h.events.length === 3 ? ['MCPServer ev Warning ConnectFailed'] : []),
      ]);
      await h.reconciler.reconcile('ns/ev');
      expect(h.events.length).toBeLessThanOrEqual(3);
      expect(h.events.join('\n')).not.toContain('s3cret');
    } finally {
      h.reconciler.closeAll();
      await own.stop();
    }
  });

  it('a header whose Secret cannot be read: SecretUnavailable, saying which Secret, and nothing is sent', async () => {
    const secrets: SecretReader = { read: (ns, name) => Promise.reject(new SecretUnavailableError(`Secret ${ns}/${name} does not exist: create it`)) };
    const h = harness({ url: server.url, headers: [{ name: 'Authorization', secretKeyRef: { name: 'missing-token', key: 'authorization' } }] }, secrets);
    try {
      const result = await h.reconciler.reconcile('ns/ev');
      expect(result).toEqual({ requeueAfterMs: 15_000 });
      expect(ready(h.obj.status)).toMatchObject({ status: 'False', reason: 'SecretUnavailable' });
      expect(ready(h.obj.status)?.message).toContain('header Authorization: Secret ns/missing-token does not exist');
      expect(ready(h.obj.status)?.message).toContain('mcpServerSecrets');
      expect(h.events).toEqual([expect.stringMatching(/^MCPServer ev Warning SecretUnavailable: header Authorization: Secret ns\/missing-token does not exist/) as string]);
    } finally {
      h.reconciler.closeAll();
    }
  });
});
