/**
 * KubePodClient.readLog: a real kubelet that no longer has a container answers 200 with "unable to
 * retrieve container logs for containerd://…" as the log (seen in the chaos suite on real nodes,
 * where that sentence was once journaled as a tool's output). That must be a failed read.
 */
import type { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { KubePodClient } from '../../src/adapters/kube/pods.ts';

function clientAnswering(text: string): KubePodClient {
  const core = { readNamespacedPodLog: () => Promise.resolve(text) } as unknown as CoreV1Api;
  return new KubePodClient(core);
}

describe('KubePodClient.readLog', () => {
  it('returns the log, truncated at the limit', async () => {
    expect(await clientAnswering('fetch({"url":"b"})').readLog('ns', 'p', 'tool', 100)).toEqual({ text: 'fetch({"url":"b"})', truncated: false });
    expect(await clientAnswering('abcdef').readLog('ns', 'p', 'tool', 3)).toEqual({ text: 'abc', truncated: true });
  });

  it('treats the kubelet\'s "unable to retrieve container logs" answer as a failed read, not as output', async () => {
    const gone = 'unable to retrieve container logs for containerd://1af5e9a73774fd3b07b4719db5a2b9580526f020b34c628006033f8154dd01e2';
    await expect(clientAnswering(gone).readLog('ns', 'p', 'tool', 4096)).rejects.toThrow(gone);
    await expect(clientAnswering(`${gone}\n`).readLog('ns', 'p', 'tool', 4096)).rejects.toThrow('unable to retrieve container logs');
    // A tool may print the sentence among other output: only the whole answer means "gone".
    expect((await clientAnswering(`step 1\n${gone}\n`).readLog('ns', 'p', 'tool', 4096)).text).toContain('step 1');
  });
});
