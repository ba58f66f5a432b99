import { describe, expect, it } from 'vitest';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { agentRun, agentRunSpec, specUpdateViolations } from '../../src/api/agent-run.ts';
import { agentTool, agentToolSpec } from '../../src/api/agent-tool.ts';
import { parseDurationMs } from '../../src/api/primitives.ts';
import { generatedFiles } from '../../scripts/generated-files.ts';
import { invalidCases, merge, validRunSpec, validToolSpec } from '../fixtures/invalid-manifests.ts';

const root = join(import.meta.dirname, '..', '..');

describe('generated CRDs', () => {
  it('are up to date with src/api (run `npm run generate` if this fails)', async () => {
    for (const [path, content] of Object.entries(generatedFiles())) {
      expect(await readFile(join(root, path), 'utf8'), path).toBe(content);
    }
  });
});

describe('zod schemas', () => {
  it('accept the valid base manifests and fill in defaults', () => {
    const spec = agentRunSpec.parse(validRunSpec());
    expect(spec.limits).toMatchObject({ maxTurns: 20, timeout: '1h', maxParallelTools: 4 });
    expect(spec.model.maxTokens).toBe(4096);
    expect(spec.model.endpointRef.name).toBe('anthropic');
    expect(spec.cancel).toBe(false);
    expect(agentToolSpec.parse(validToolSpec()).container.image).toBe('curlimages/curl');
  });

  it('accept every example in deploy/examples', async () => {
    const dir = join(root, 'deploy', 'examples');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
        const obj = doc.toJSON() as { kind: string };
        const schema = obj.kind === 'AgentRun' ? agentRun : obj.kind === 'AgentTool' ? agentTool : undefined;
        if (!schema) continue;
        const result = schema.safeParse(obj);
        expect(result.success, `${file}: ${result.error?.message ?? ''}`).toBe(true);
      }
    }
  });

  describe.each(invalidCases)('refuse: $name', (c) => {
    it('with a message that says what to fix', () => {
      const base = c.kind === 'AgentRun' ? validRunSpec() : validToolSpec();
      const created = merge(base, c.spec ?? {});
      const expected = c.zodSays ?? c.apiserverSays.at(-1) ?? '';
      if (c.update) {
        expect(agentRunSpec.safeParse(created).success).toBe(true);
        const before = agentRunSpec.parse(created);
        const after = agentRunSpec.parse(merge(created, c.update));
        expect(specUpdateViolations(before, after).join('\n')).toContain(expected);
        return;
      }
      const result = (c.kind === 'AgentRun' ? agentRunSpec : agentToolSpec).safeParse(created);
      expect(result.success).toBe(false);
      const text = result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n') ?? '';
      expect(text).toContain(expected);
    });
  });

  it('a spec change to suspend is allowed, so is setting cancel', () => {
    const before = agentRunSpec.parse(validRunSpec());
    expect(specUpdateViolations(before, { ...before, suspend: true, cancel: true })).toEqual([]);
  });
});

describe('parseDurationMs', () => {
  it.each([['90s', 90_000], ['1h30m', 5_400_000], ['500ms', 500], ['2h', 7_200_000], ['1m1s', 61_000]])('%s = %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });
});
