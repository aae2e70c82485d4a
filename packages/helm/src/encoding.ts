/**
 * YAML and JSON as Helm templates see them: YAML 1.1 parsing (as sigs.k8s.io/yaml
 * reads values files and `fromYaml`), Helm's `toYaml` (sorted keys, block style)
 * and JSON as Go's encoding/json writes it. Chart loading, values and the
 * function families share these, so a value reads and prints one way everywhere.
 */
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { fmtValue, isMap, put } from './template/exec.js';

/** A template value as the YAML and JSON writers can take it: undefined -> null, Go values -> their text. */
function yamlSafe(v: unknown): unknown {
  if (v === undefined) return null;
  if (Array.isArray(v)) return v.map(yamlSafe);
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) put(out, k, yamlSafe(v[k]));
    return out;
  }
  if (typeof v === 'object' && v !== null) return fmtValue(v);
  if (typeof v === 'function') return null;
  return v;
}

/** Helm's toYaml: sorted keys, block style, no trailing newline. */
export function toYaml(v: unknown): string {
  const s = stringifyYaml(yamlSafe(v), {
    version: '1.1',
    sortMapEntries: true,
    indentSeq: false,
    lineWidth: 0,
    minContentWidth: 0,
    aliasDuplicateObjects: false,
  });
  return s.replace(/\n$/, '');
}

export function parseYamlValue(text: string): unknown {
  return parseYaml(text, { version: '1.1', merge: true, uniqueKeys: false, maxAliasCount: 10000 }) ?? null;
}

/** JSON text of a template value (toJson and friends). */
export function jsonText(v: unknown, indent?: string): string {
  const s = JSON.stringify(yamlSafe(v), (_k, x) => (x === undefined ? null : x), indent);
  return s ?? 'null';
}

/** All YAML documents of a multi-document text, each parsed (errors per document). */
export function yamlDocuments(text: string) {
  return parseAllDocuments(text, { version: '1.1', merge: true, uniqueKeys: false });
}
