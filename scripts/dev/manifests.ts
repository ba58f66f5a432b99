/**
 * The one change dev mode (and the examples test) makes to an example before applying it: point
 * every ModelEndpoint at a local Messages API stand-in by setting its `spec.baseURL`. Runs name
 * only their endpoint, so nothing else in any file is touched; `baseURLOnlyDiff` checks exactly that.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';

type Doc = Record<string, unknown>;

/** Parses a multi-document YAML manifest into its objects (empty documents dropped). */
export function parseManifest(text: string): Doc[] {
  return parseAllDocuments(text).map((d) => d.toJSON() as unknown).filter((d): d is Doc => typeof d === 'object' && d !== null);
}

/** The manifest with `spec.baseURL: <baseURL>` on every ModelEndpoint, as YAML ready for kubectl apply. */
export function withModelBaseURL(text: string, baseURL: string): string {
  const docs = parseManifest(text).map((doc) => {
    if (doc.kind !== 'ModelEndpoint') return doc;
    const copy = structuredClone(doc) as { spec: Doc };
    copy.spec.baseURL = baseURL;
    return copy;
  });
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/**
 * What differs between two manifests other than ModelEndpoint `spec.baseURL`: an empty list
 * means the patched manifest is the original plus the baseURL and nothing else.
 */
export function baseURLOnlyDiff(original: string, patched: string): string[] {
  const before = parseManifest(original);
  const after = parseManifest(patched);
  if (before.length !== after.length) return [`${before.length} objects became ${after.length}`];
  const problems: string[] = [];
  before.forEach((doc, i) => {
    const mine = structuredClone(doc) as { kind?: unknown; spec?: Doc };
    const other = structuredClone(after[i]) as { kind?: unknown; spec?: Doc };
    if (mine.kind === 'ModelEndpoint' && mine.spec) delete mine.spec.baseURL;
    if (other.kind === 'ModelEndpoint' && other.spec) delete other.spec.baseURL;
    if (!isDeepStrictEqual(mine, other)) problems.push(`object ${i} (${String(doc.kind)}) changed beyond ModelEndpoint spec.baseURL`);
  });
  return problems;
}
