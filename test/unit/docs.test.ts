/**
 * The docs stay true to the code: every condition reason and step outcome is explained in
 * docs/troubleshooting.md, docs/api.md describes every field and rule (its staleness is checked
 * with the other generated files in api-schema.test.ts), the README's quick start uses scripts
 * that exist, and relative links in the docs lead somewhere.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Reason, StepOutcome } from '../../src/api/conditions.ts';
import { celRules, undocumentedFields, unusedNotes } from '../../scripts/generate-api-docs.ts';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFile(join(root, path), 'utf8');

/** The text between a `## title` heading and the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no "## ${title}" section`);
  const next = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, next < 0 ? undefined : next);
}

/** Names in backticks of the headings at `level` (e.g. `#### \`Completed\``). */
function headings(markdown: string, level: string): string[] {
  return [...markdown.matchAll(new RegExp(`^${level} \`([A-Za-z]+)\`$`, 'gm'))].map((m) => m[1] ?? '');
}

describe('docs/troubleshooting.md', () => {
  it('explains every condition reason, and only real ones', async () => {
    const reasons = headings(section(await read('docs/troubleshooting.md'), 'Condition reasons'), '####');
    expect(reasons.sort()).toEqual(Object.values(Reason).sort());
  });

  it('explains every step outcome, and only real ones', async () => {
    const outcomes = headings(section(await read('docs/troubleshooting.md'), 'Step outcomes'), '###');
    expect(outcomes.sort()).toEqual(Object.values(StepOutcome).sort());
  });
});

describe('docs/api.md', () => {
  it('has a description for every field (add .describe() in src/api, or a note in scripts/generate-api-docs.ts)', () => {
    expect(undocumentedFields()).toEqual([]);
  });

  it('keeps no note for a field the schema describes itself or that is gone', () => {
    expect(unusedNotes()).toEqual([]);
  });

  it('lists every CEL rule with the message users see', async () => {
    const api = await read('docs/api.md');
    const rules = celRules();
    expect(rules.length).toBeGreaterThan(10);
    for (const rule of rules) expect(api, rule.message).toContain(rule.message.replaceAll('|', '\\|'));
  });
});

describe('README.md', () => {
  it('starts with a quick start of two commands that exist', async () => {
    const readme = await read('README.md');
    const pkg = JSON.parse(await read('package.json')) as { scripts: Record<string, string> };
    const quickStart = section(readme, 'Quick start');
    expect(readme.indexOf('\n## Quick start\n')).toBe(readme.indexOf('\n## '));
    const commands = [...quickStart.matchAll(/^npm run ([a-z:-]+)/gm)].map((m) => m[1]);
    expect(commands.slice(0, 2)).toEqual(['setup', 'dev']);
    for (const script of commands) expect(pkg.scripts, `npm run ${script ?? ''}`).toHaveProperty(script ?? '');
  });

  it('and the docs link only to files that exist', async () => {
    const files = ['README.md', ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    for (const file of files) {
      // Links only: code blocks and code spans may hold anything (regular expressions, say).
      const text = (await read(file)).replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (!target || /^(https?:|mailto:|#)/.test(target)) continue;
        const path = join(root, dirname(file), target.replace(/#.*$/, ''));
        if (!existsSync(path)) broken.push(`${file}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
