// Comparing ferry's render of a chart with real helm's (`helm template`), document
// by document. Both sides are cut into documents the way helm cuts a template's
// output (releaseutil.SplitManifests), parsed to objects, grouped by their
// `# Source:` and ordered by identity, so only content can differ.
import { isDeepStrictEqual } from 'node:util';
import { parseDocument } from 'yaml';
import { parseHelmTemplate } from '../../../test/harness/helm.js';
import { loadChart } from '../src/chart-load.js';
import { type RenderOptions, renderChart, resolveChart } from '../src/render.js';
import { userValues } from '../src/values.js';

/** Documents of one `# Source:`, in a stable order. */
export type Rendered = Map<string, unknown[]>;

/** helm's releaseutil.SplitManifests separator. */
const SEPARATOR = /(?:^|\s*\n)---\s*/;

function identity(o: unknown): string {
  const m = (o ?? {}) as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  return `${String(m.apiVersion)}|${String(m.kind)}|${String(m.metadata?.namespace)}|${String(m.metadata?.name)}|${JSON.stringify(o)}`;
}

function grouped(docs: Array<{ source: string; object: unknown }>): Rendered {
  const out: Rendered = new Map();
  for (const d of docs) {
    if (!out.has(d.source)) out.set(d.source, []);
    out.get(d.source)!.push(d.object);
  }
  for (const list of out.values()) list.sort((a, b) => (identity(a) < identity(b) ? -1 : identity(a) > identity(b) ? 1 : 0));
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `helm template` output as documents by source. */
export function helmRendered(text: string): Rendered {
  return grouped(parseHelmTemplate(text));
}

/** ferry's render of a chart (directory or .tgz) as documents by source, and the templates it could not render. */
export async function ferryRendered(chartPath: string, opts: RenderOptions & { set?: string[] } = {}): Promise<{ rendered: Rendered; failures: string[] }> {
  const chart = await loadChart(chartPath);
  const root = resolveChart(chart, userValues([], opts.set ?? []));
  const result = renderChart(root, opts);
  const docs: Array<{ source: string; object: unknown }> = [];
  for (const t of result.rendered) {
    const source = `${t.instance.templatePrefix}/${t.file}`;
    for (const chunk of t.text.split(SEPARATOR)) {
      if (chunk.trim() === '') continue;
      const object = parseDocument(chunk).toJS();
      if (object !== null && object !== undefined) docs.push({ source, object });
    }
  }
  return { rendered: grouped(docs), failures: result.failures.map((f) => `${f.instance.templatePrefix}/${f.file}: ${f.message}`) };
}

const RANDOM = '<differs between two helm runs>';

/**
 * The normalisation rule: a value (at the same source, document and path) that
 * differs between two helm runs of the same chart is random (a generated
 * certificate, password or uuid, a time), and is replaced by a marker in the
 * first helm run and in ferry's render alike.
 */
export function maskRandom(first: Rendered, second: Rendered, ...others: Rendered[]): void {
  for (const [source, docs] of first) {
    const again = second.get(source) ?? [];
    docs.forEach((doc, i) => {
      const rest = others.map((o) => o.get(source)?.[i]);
      docs[i] = maskInto(doc, again[i], rest);
      others.forEach((o, j) => {
        const list = o.get(source);
        if (list && i < list.length) list[i] = rest[j];
      });
    });
  }
}

/** Replaces, in `a` and in the same places of every `rest`, each value that differs between `a` and `b`. */
function maskInto(a: unknown, b: unknown, rest: unknown[]): unknown {
  if (isDeepStrictEqual(a, b)) return a;
  const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object';
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    for (const k of Object.keys(a)) {
      if (!(k in b)) continue;
      const sub = rest.map((r) => (isObj(r) ? r[k] : undefined));
      a[k] = maskInto(a[k], b[k], sub);
      rest.forEach((r, i) => {
        if (isObj(r) && k in r) r[k] = sub[i];
      });
    }
    return a;
  }
  rest.forEach((_, i) => {
    rest[i] = RANDOM;
  });
  return RANDOM;
}

/** The differences of two renders, one line each (empty when they are the same). */
export function renderDiff(helm: Rendered, ferry: Rendered): string[] {
  const out: string[] = [];
  for (const source of new Set([...helm.keys(), ...ferry.keys()])) {
    const h = helm.get(source) ?? [];
    const f = ferry.get(source) ?? [];
    if (isDeepStrictEqual(h, f)) continue;
    if (h.length !== f.length) {
      out.push(`${source}: helm renders ${h.length} documents, ferry ${f.length}`);
      continue;
    }
    h.forEach((doc, i) => {
      for (const d of valueDiff(doc, f[i], '')) out.push(`${source} #${i}: ${d}`);
    });
  }
  return out;
}

function valueDiff(a: unknown, b: unknown, path: string): string[] {
  if (isDeepStrictEqual(a, b)) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object';
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => valueDiff(a[k], b[k], `${path}.${k}`));
  }
  return [`${path || '.'}: helm ${JSON.stringify(a)}, ferry ${JSON.stringify(b)}`];
}
