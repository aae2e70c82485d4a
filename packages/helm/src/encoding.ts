/**
 * YAML and JSON as Helm templates see them: YAML 1.1 parsing as sigs.k8s.io/yaml
 * reads values files and `fromYaml` (its yaml.v2 scalars: yes/no/on/off are bools,
 * 0o17 is an int, dates and 1:20 stay strings), Helm's `toYaml` (yaml-emitter.ts)
 * and JSON as Go's encoding/json writes it (sorted keys, HTML-safe unless raw).
 * Chart loading, values and the function families share these, so a value reads
 * and prints one way everywhere.
 */
import { type DocumentOptions, type ParseOptions, parseAllDocuments, parse as parseYaml, type ScalarTag, type SchemaOptions } from 'yaml';
import { fmtValue, isMap, put } from './template/exec.js';
import { emitYaml } from './yaml-emitter.js';

/** yaml.v2 reads 0o17 as an int too (Go's strconv.ParseInt with base 0). */
const goOctal: ScalarTag = {
  identify: (v) => typeof v === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (s) => {
    const neg = s.startsWith('-');
    const n = Number.parseInt(s.replace(/^[-+]?0o/, '').replaceAll('_', ''), 8);
    return neg ? -n : n;
  },
};

const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: '1.1',
  merge: true,
  uniqueKeys: false,
  // decoded into interface{}, yaml.v2 keeps timestamps and base-60 numbers as strings
  customTags: (tags) => [
    goOctal,
    ...tags.filter((t) => typeof t !== 'object' || (t.tag !== 'tag:yaml.org,2002:timestamp' && (t as ScalarTag).format !== 'TIME')),
  ],
};

/** A template value as the YAML and JSON writers can take it: undefined -> null, Go values -> their text. */
export function yamlSafe(v: unknown): unknown {
  if (v === undefined) return null;
  if (Array.isArray(v)) return v.map(yamlSafe);
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) put(out, k, yamlSafe(v[k]));
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    const json = (v as { toJSON?: () => unknown }).toJSON;
    return typeof json === 'function' ? json.call(v) : fmtValue(v);
  }
  if (typeof v === 'function') return null;
  return v;
}

/** Helm's toYaml (sigs.k8s.io/yaml over yaml.v2): sorted keys, block style, no trailing newline. */
export function toYaml(v: unknown): string {
  return emitYaml(yamlSafe(v)).replace(/\n$/, '');
}

/** Helm's toYamlPretty (yaml.v3, indent 2): sequences indented under their key. */
export function toYamlPretty(v: unknown): string {
  return emitYaml(yamlSafe(v), true).replace(/\n$/, '');
}

export function parseYamlValue(text: string): unknown {
  return parseYaml(text, { ...YAML_OPTIONS, maxAliasCount: 10000 }) ?? null;
}

/** `\u00XX` for what Go's encoding/json always escapes (U+2028, U+2029) and, unless raw, for HTML's `<>&`. */
function goEscapes(json: string, raw: boolean): string {
  return json.replace(raw ? /[\u2028\u2029]/g : /[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's encoding/json order of map keys: the bytes of their UTF-8 (JSON.stringify would put integer-like keys first). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function writeJson(v: unknown, indent: string, pad: string): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  const inner = indent === '' ? '' : `\n${pad}${indent}`;
  const close = indent === '' ? '' : `\n${pad}`;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[${v.map((x) => inner + writeJson(x, indent, pad + indent)).join(',')}${close}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort(byteOrder);
  if (keys.length === 0) return '{}';
  const sep = indent === '' ? ':' : ': ';
  return `{${keys.map((k) => inner + JSON.stringify(k) + sep + writeJson(o[k], indent, pad + indent)).join(',')}${close}}`;
}

/** JSON text of a template value as Go's json.Marshal writes it (toJson; `raw` for toRawJson: no HTML escaping). */
export function jsonText(v: unknown, indent = '', raw = false): string {
  const s = writeJson(yamlSafe(v), indent, '');
  return goEscapes(s, raw);
}

/** All YAML documents of a multi-document text, each parsed (errors per document). */
export function yamlDocuments(text: string) {
  return parseAllDocuments(text, YAML_OPTIONS);
}
