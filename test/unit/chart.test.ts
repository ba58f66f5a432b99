/** The Helm chart's static parts: values documented and schema-checked, generated files derived from crds/. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART_DIR, chartFiles } from '../../scripts/chart-files.ts';
import { generatedFiles } from '../../scripts/generated-files.ts';

const root = join(import.meta.dirname, '..', '..');
const chart = (path: string) => readFile(join(root, CHART_DIR, path), 'utf8');

/** Dotted paths of the leaves of a values tree (arrays and empty maps are leaves). */
function leaves(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

describe('chart values', () => {
  it('documents every value in README.md', async () => {
    const values = parse(await chart('values.yaml')) as Record<string, unknown>;
    const text = await chart('README.md');
    const readme = text.slice(text.indexOf('\n## Values'), text.indexOf('\n## ', text.indexOf('\n## Values') + 1));
    const documented = new Set([...readme.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const missing = leaves(values).filter((path) => {
      const parts = path.split('.');
      return !parts.some((_p, i) => documented.has(parts.slice(0, i + 1).join('.')));
    });
    expect(missing).toEqual([]);
    // And documents nothing that does not exist.
    const all = new Set(leaves(values).flatMap((p) => p.split('.').map((_s, i, parts) => parts.slice(0, i + 1).join('.'))));
    expect([...documented].filter((d) => d && !all.has(d))).toEqual([]);
  });

  it('accepts its defaults under values.schema.json and refuses what the schema forbids', async () => {
    const schema = JSON.parse(await chart('values.schema.json')) as object;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const values = parse(await chart('values.yaml')) as Record<string, unknown>;
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    const bad: Record<string, unknown>[] = [
      { replicaCount: 0 }, { operator: { logLevel: 'loud' } }, { watchNamespaces: ['UPPER'] }, { modelApiKeySecrets: 'anthropic' },
      { leaderElection: { leaseDuration: '15' } }, { admissionPolicies: { install: 'sometimes' } }, { podSecurityContext: { runAsNonRoot: false } },
      { securityContext: { privileged: true } }, { metrics: { port: 0 } }, { typo: true }, { operator: { extraArgs: ['not-a-flag'] } },
    ];
    for (const override of bad) expect(validate({ ...values, ...override }), JSON.stringify(override)).toBe(false);
  });

  it('has the operator version as appVersion', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    const meta = parse(await chart('Chart.yaml')) as { appVersion: string; version: string };
    expect(meta.appVersion).toBe(pkg.version);
  });
});

describe('generated chart files', () => {
  it('are derived from crds/: CRDs copied byte for byte, other manifests gated per kind', () => {
    const files = generatedFiles();
    for (const [path, content] of Object.entries(files)) {
      if (!path.startsWith('crds/')) continue;
      const copy = files[`${CHART_DIR}/crds/${path.slice(5)}`];
      if (copy !== undefined) expect(copy).toBe(content);
    }
    expect(Object.keys(files)).toContain(`${CHART_DIR}/crds/agentrun.dev_agentruns.yaml`);
    expect(Object.keys(files)).toContain(`${CHART_DIR}/crds/agentrun.dev_agenttools.yaml`);
  });

  it('wraps each non-CRD document in the admissionPolicies condition for its kind, and refuses Helm delimiters', () => {
    const out = chartFiles({
      'crds/agentrun.dev_x.yaml': '# header\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\n',
      'crds/agentrun.dev_policies.yaml': '# header\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: p}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n',
    });
    expect(Object.keys(out).sort()).toEqual([`${CHART_DIR}/crds/agentrun.dev_x.yaml`, `${CHART_DIR}/templates/policies.yaml`]);
    const template = out[`${CHART_DIR}/templates/policies.yaml`] ?? '';
    expect(template).toContain('{{- if include "agentrun-operator.installPolicy" (list . "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy") }}\n---\napiVersion: admissionregistration.k8s.io/v1');
    expect(template).toContain('(list . "rbac.authorization.k8s.io/v1/ClusterRole")');
    expect(template.match(/\{\{- end \}\}/g)).toHaveLength(2);
    expect(() => chartFiles({ 'crds/a.yaml': 'apiVersion: v1\nkind: ConfigMap\ndata: {a: "{{ x }}"}\n' })).toThrow(/read as a template/);
  });
});
