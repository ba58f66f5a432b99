/**
 * Starting a mock model server, and the content-block builders scripts are written with.
 */
import { MockModelServerImpl } from './server.ts';
import type { MockModelServer, MockModelServerOptions, ScriptedBlock } from './types.ts';

/** A text block for a {@link ScriptedTurn}. */
export function text(value: string): ScriptedBlock {
  return { type: 'text', text: value };
}

/**
 * A tool_use block for a {@link ScriptedTurn}. Without `id`, the server assigns
 * `toolu_<script>_<turn>_<n>` (script key reduced to [a-zA-Z0-9_-], n counts tool_use blocks in the
 * turn), so a re-issued call gets the same ids.
 */
export function toolUse(name: string, input: Record<string, unknown>, id?: string): ScriptedBlock {
  return id === undefined ? { type: 'tool_use', name, input } : { type: 'tool_use', name, input, id };
}

/** Starts a server on 127.0.0.1, or `options.host` (port 0 by default). */
export async function startMockModelServer(options: MockModelServerOptions = {}): Promise<MockModelServer> {
  const mock = new MockModelServerImpl(options);
  await mock.listen(options.port ?? 0);
  return mock;
}
