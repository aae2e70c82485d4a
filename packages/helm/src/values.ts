/**
 * Chart values the way Helm computes them: `--values` files merged in order,
 * `--set` on top (Helm's strvals syntax), then coalesced with the chart's
 * defaults and, for every subchart, the parent's `<subchart>:` section and
 * `global` pushed down (chartutil.CoalesceValues).
 */
import { readFile } from 'node:fs/promises';
import { usageError } from '@ferry/oci-client';
import { parseYamlValue } from './encoding.js';
import { deepCopy } from './funcs/convert.js';
import { hasOwn, isMap, put } from './template/exec.js';

export type Values = Record<string, unknown>;

/** Parses a values document: a YAML map (empty document = no values). */
export function parseValues(text: string, what: string): Values {
  let v: unknown;
  try {
    v = parseYamlValue(text);
  } catch (e) {
    throw usageError(`${what} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (v === null || v === undefined) return {};
  if (!isMap(v)) throw usageError(`${what} must be a YAML map of values, not ${Array.isArray(v) ? 'a list' : typeof v}`);
  return v;
}

export async function readValuesFile(path: string): Promise<Values> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read values file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseValues(text, `values file ${path}`);
}

/** Helm's mergeMaps: `b` wins, maps merge deeply. Returns a new map. */
export function mergeValues(a: Values, b: Values): Values {
  const out: Values = { ...a };
  for (const k of Object.keys(b)) {
    const bv = b[k];
    const av = out[k];
    put(out, k, isMap(bv) && isMap(av) ? mergeValues(av, bv) : bv);
  }
  return out;
}

// ---------------------------------------------------------------------------
// --set (helm's pkg/strvals)

function typed(val: string): unknown {
  if (val.toLowerCase() === 'true') return true;
  if (val.toLowerCase() === 'false') return false;
  if (val.toLowerCase() === 'null') return null;
  if (val === '0') return 0;
  if (val.length > 1 && val.startsWith('0')) return val;
  if (/^[+-]?\d+$/.test(val)) {
    const n = Number(val);
    if (Number.isSafeInteger(n)) return n;
  }
  return val;
}

type PathPart = { key: string } | { index: number };

function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}') depth = Math.max(0, depth - 1);
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

function parseSetKey(key: string, whole: string): PathPart[] {
  const parts: PathPart[] = [];
  let cur = '';
  const bad = (why: string) => usageError(`--set ${whole}: ${why}`);
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    if (c === '\\' && i + 1 < key.length) {
      cur += key[++i];
      continue;
    }
    if (c === '.') {
      if (cur === '' && (parts.length === 0 || !('index' in parts[parts.length - 1]!))) throw bad('empty key part');
      if (cur !== '') parts.push({ key: cur });
      cur = '';
      continue;
    }
    if (c === '[') {
      if (cur !== '') parts.push({ key: cur });
      cur = '';
      const end = key.indexOf(']', i);
      if (end < 0) throw bad('missing "]"');
      const n = key.slice(i + 1, end);
      if (!/^\d+$/.test(n)) throw bad(`list index "${n}" is not a non-negative number`);
      const idx = Number(n);
      if (idx > 65536) throw bad(`list index ${idx} is too large`);
      parts.push({ index: idx });
      i = end;
      continue;
    }
    cur += c;
  }
  if (cur !== '') parts.push({ key: cur });
  if (parts.length === 0) throw bad('missing key');
  if (!('key' in parts[0]!)) throw bad('a key must come before a list index');
  return parts;
}

function unescapeValue(v: string): string {
  return v.replace(/\\(.)/g, '$1');
}

function setPath(target: Values, parts: PathPart[], value: unknown): void {
  let cur: unknown = target;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const last = i === parts.length - 1;
    const next = parts[i + 1];
    const fresh = () => (next && 'index' in next ? [] : {});
    if ('key' in p) {
      const m = cur as Values;
      if (last) {
        put(m, p.key, value);
        return;
      }
      const existing = hasOwn(m, p.key) ? m[p.key] : undefined;
      const wantList = next !== undefined && 'index' in next;
      if (wantList ? !Array.isArray(existing) : !isMap(existing)) put(m, p.key, fresh());
      cur = m[p.key];
    } else {
      const arr = cur as unknown[];
      while (arr.length <= p.index) arr.push(null);
      if (last) {
        arr[p.index] = value;
        return;
      }
      const existing = arr[p.index];
      const wantList = next !== undefined && 'index' in next;
      if (wantList ? !Array.isArray(existing) : !isMap(existing)) arr[p.index] = fresh();
      cur = arr[p.index];
    }
  }
}

/** Applies one `--set` argument (`a.b=c`, `a.b[0]=c`, `a=b,c=d`, `a={x,y}`) to `target`. */
export function applySet(target: Values, expr: string): void {
  for (const assignment of splitTopLevel(expr, ',')) {
    if (assignment === '') continue;
    let eq = -1;
    for (let i = 0; i < assignment.length; i++) {
      if (assignment[i] === '\\') {
        i++;
        continue;
      }
      if (assignment[i] === '=') {
        eq = i;
        break;
      }
    }
    if (eq < 0) throw usageError(`--set ${expr}: "${assignment}" is not KEY=VALUE`);
    const parts = parseSetKey(assignment.slice(0, eq), expr);
    const raw = assignment.slice(eq + 1);
    let value: unknown;
    if (raw.startsWith('{') && raw.endsWith('}')) {
      value = splitTopLevel(raw.slice(1, -1), ',')
        .filter((x) => x !== '')
        .map((x) => typed(unescapeValue(x)));
    } else {
      value = typed(unescapeValue(raw));
    }
    setPath(target, parts, value);
  }
}

/** The user-supplied values: files merged in order, then every `--set`. */
export function userValues(files: Values[], sets: string[]): Values {
  let v: Values = {};
  for (const f of files) v = mergeValues(v, f);
  v = deepCopy(v);
  for (const s of sets) applySet(v, s);
  return v;
}

// ---------------------------------------------------------------------------
// coalescing (chartutil)

/** `dst` wins; nulls in `dst` delete the key unless `merge`. Mutates dst. */
export function coalesceTables(dst: Values, src: Values, merge = false): Values {
  for (const key of Object.keys(src)) {
    const val = src[key];
    const has = hasOwn(dst, key);
    const dv = has ? dst[key] : undefined;
    if (has && !merge && dv === null) {
      delete dst[key];
    } else if (!has) {
      put(dst, key, deepCopy(val));
    } else if (isMap(val) && isMap(dv)) {
      coalesceTables(dv, val, merge);
    }
  }
  return dst;
}

/** Parent globals pushed into a subchart's values (parent wins). Mutates dest. */
export function coalesceGlobals(dest: Values, src: Values): void {
  const dg: Values = isMap(dest.global) ? (dest.global as Values) : {};
  const sg: Values = isMap(src.global) ? (src.global as Values) : {};
  for (const key of Object.keys(sg)) {
    const val = sg[key];
    if (isMap(val)) {
      const vv = deepCopy(val);
      const dv = dg[key];
      if (dv === undefined || !hasOwn(dg, key)) put(dg, key, vv);
      else if (isMap(dv)) {
        coalesceTables(vv, dv, true);
        put(dg, key, vv);
      }
    } else if (hasOwn(dg, key) && isMap(dg[key])) {
      // a table in the subchart, a scalar in the parent: keep the table
    } else {
      put(dg, key, val);
    }
  }
  dest.global = dg;
}

/** What coalescing needs to know about a chart tree. */
export interface ValuesNode {
  /** The name the parent knows it by (alias or chart name). */
  name: string;
  defaults: Values;
  children: ValuesNode[];
}

/**
 * chartutil.CoalesceValues: `user` (already merged files and --set) over the
 * chart defaults, recursively into every child's section. Returns a new tree.
 */
export function coalesceChartValues(node: ValuesNode, user: Values): Values {
  const dest = deepCopy(user);
  coalesceNode(node, dest);
  return dest;
}

function coalesceNode(node: ValuesNode, dest: Values): void {
  // chart defaults under dest
  for (const key of Object.keys(node.defaults)) {
    const val = node.defaults[key];
    if (hasOwn(dest, key)) {
      const value = dest[key];
      if (value === null) {
        delete dest[key];
      } else if (isMap(value) && isMap(val)) {
        const isChild = node.children.some((c) => c.name === key);
        coalesceTables(value, val, isChild);
      }
    } else {
      put(dest, key, deepCopy(val));
    }
  }
  for (const child of node.children) {
    let section = dest[child.name];
    if (section === undefined || section === null || !hasOwn(dest, child.name)) {
      section = {};
      put(dest, child.name, section);
    }
    if (!isMap(section)) continue;
    coalesceGlobals(section, dest);
    coalesceNode(child, section);
  }
}

/** Helm's Values.PathValue: the value at a dotted path, or undefined when absent. */
export function pathValue(values: unknown, path: string): unknown {
  let cur: unknown = values;
  for (const part of path.split('.')) {
    if (!isMap(cur) || !hasOwn(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}
