/**
 * MCP Tasks on the wire (adapters/mcp/tasks.ts) against the SDK's own server implementation
 * (McpServer + InMemoryTaskStore, as server-everything uses them), linked in memory: the
 * outcomes server-everything cannot be made to produce for a client without elicitation —
 * input_required (the operator cancels and says so), failed, cancelled, a task the server does
 * not know (lost) — and the timeout (tasks/cancel, counted from createdAt).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { InMemoryTaskStore } from '@modelcontextprotocol/sdk/experimental/tasks';
import { z } from 'zod';
import { createTask, pollTask, type TaskCall } from '../../src/adapters/mcp/tasks.ts';
import type { MCPTaskHandle } from '../../src/api/journal-entry.ts';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

/** A real SDK server with one required-task tool whose task ends as `mode` says. */
async function connected(): Promise<{ client: Client; store: InMemoryTaskStore }> {
  const store = new InMemoryTaskStore();
  const server = new McpServer({ name: 'tasks-test', version: '1' }, {
    capabilities: { tools: {}, tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } }, taskStore: store });
  server.experimental.tasks.registerToolTask('job', {
    inputSchema: { mode: z.enum(['done', 'input', 'fail', 'cancel', 'slow']) }, execution: { taskSupport: 'required' },
  }, {
    createTask: async ({ mode }, extra) => {
      const task = await extra.taskStore.createTask({ ttl: 60_000, pollInterval: 50 });
      setTimeout(() => {
        const id = task.taskId;
        if (mode === 'done') void extra.taskStore.storeTaskResult(id, 'completed', { content: [{ type: 'text', text: 'job done' }] });
        if (mode === 'input') void extra.taskStore.updateTaskStatus(id, 'input_required', 'which region?');
        if (mode === 'fail') void extra.taskStore.updateTaskStatus(id, 'failed', 'disk full');
        if (mode === 'cancel') void extra.taskStore.updateTaskStatus(id, 'cancelled', 'an admin stopped it');
      }, 100);
      return { task };
    },
    getTask: async (_args, extra) => await extra.taskStore.getTask(extra.taskId),
    getTaskResult: async (_args, extra) => await extra.taskStore.getTaskResult(extra.taskId) as never,
  });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'agentrun-operator', version: '0' }, { capabilities: {} });
  await client.connect(b);
  open.push(client, server);
  return { client, store };
}

const call = (mode: string, timeoutMs = 10_000): TaskCall => ({ tool: 'job', input: { mode }, timeoutMs, maxOutputBytes: 4096 });

async function run(mode: string, timeoutMs?: number): Promise<{ result: Awaited<ReturnType<typeof pollTask>>; handle: MCPTaskHandle;
  store: InMemoryTaskStore }> {
  const { client, store } = await connected();
  const creation = await createTask(client, 'session-1', '2025-11-25', call(mode, timeoutMs), new AbortController().signal);
  if (!creation.created) throw new Error(`no task: ${JSON.stringify(creation.result)}`);
  const session = { open: async () => await Promise.resolve(client), broken: () => undefined };
  return { result: await pollTask(session, creation.handle, call(mode, timeoutMs), new AbortController().signal), handle: creation.handle, store };
}

describe('MCP tasks on the wire', () => {
  it('creates a task (its handle has what a restarted operator needs) and polls it to its result', async () => {
    const { result, handle } = await run('done');
    expect(handle).toMatchObject({ sessionId: 'session-1', protocolVersion: '2025-11-25', pollIntervalMs: 50, ttlMs: 60_000 });
    expect(Date.parse(handle.createdAt)).toBeGreaterThan(0);
    expect(result).toEqual({ kind: 'result', text: 'job done', truncated: false });
  });

  it('input_required: the operator cannot answer, so it cancels the task and says so', async () => {
    const { result, handle, store } = await run('input');
    expect(result.kind).toBe('tool-error');
    expect(result.text).toBe('Error: the MCP task asked for input (which region?), which the operator cannot give; the task was cancelled.');
    expect((await store.getTask(handle.taskId))?.status).toBe('cancelled');
  });

  it('failed gives the server\'s message; cancelled on the server is an error result', async () => {
    expect((await run('fail')).result).toMatchObject({ kind: 'tool-error', text: 'Error: the MCP task failed on the server: disk full' });
    const cancelled = (await run('cancel')).result;
    expect(cancelled.kind).toBe('tool-error');
    expect(cancelled.text).toContain('was cancelled on the server: an admin stopped it');
  });

  it('past the timeout (from createdAt) the task is cancelled and the outcome is timeout', async () => {
    const started = Date.now();
    const { result, handle, store } = await run('slow', 600);
    expect(result.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await store.getTask(handle.taskId))?.status).toBe('cancelled');
  });

  it('a task the server does not know (it restarted) is lost, not retried until the timeout', async () => {
    const { client } = await connected();
    const handle: MCPTaskHandle = { taskId: 'gone', createdAt: new Date().toISOString() };
    const session = { open: async () => await Promise.resolve(client), broken: () => undefined };
    const result = await pollTask(session, handle, call('done', 30_000), new AbortController().signal);
    expect(result.kind).toBe('task-lost');
  });
});
