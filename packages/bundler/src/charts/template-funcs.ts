/**
 * The functions Helm templates can call: Go's builtins, the Sprig library
 * (the commonly used part) and Helm's own (toYaml, fromYaml, required, lookup…).
 * `include` and `tpl` are handled by the executor. Functions that make secrets
 * or certificates return placeholders: discovery never needs their output.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { fmtValue, formatNumber, hasOwn, isMap, put, TemplateExecError, type TemplateFunc, truth } from './template-exec.js';

// ---------------------------------------------------------------------------
// helpers

/** Sprig's `empty`. */
export function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'string') return v.length === 0;
  if (typeof v === 'number') return v === 0;
  if (typeof v === 'boolean') return !v;
  if (Array.isArray(v)) return v.length === 0;
  if (isMap(v)) return Object.keys(v).length === 0;
  return false;
}

/** Sprig's strval: how a value becomes a string argument. */
export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  return fmtValue(v);
}

function toInt(v: unknown): number {
  if (typeof v === 'number') return Math.trunc(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const s = v.trim();
    if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s, 16);
    const n = Number(s);
    return Number.isFinite(n) ? Math.trunc(n) : 0;
  }
  return 0;
}

function toFloat(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

function list(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined) return [];
  throw new TemplateExecError(`cannot use ${typeName(v)} as a list`, undefined);
}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  if (isMap(v)) return 'map[string]interface {}';
  return 'object';
}

function kindName(v: unknown): string {
  if (v === null || v === undefined) return 'invalid';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'slice';
  if (isMap(v)) return 'map';
  if (typeof v === 'function') return 'func';
  return 'struct';
}

export function deepCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(deepCopy) as T;
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) put(out, k, deepCopy(v[k]));
    return out as T;
  }
  return v;
}

function isEmptyForMerge(v: unknown): boolean {
  return isEmpty(v);
}

/** mergo.Merge (no override): fills dst's missing or empty values from src, deeply. */
export function mergeInto(dst: Record<string, unknown>, src: Record<string, unknown>, overwrite: boolean): Record<string, unknown> {
  for (const k of Object.keys(src)) {
    const sv = src[k];
    const dv = hasOwn(dst, k) ? dst[k] : undefined;
    if (isMap(sv) && isMap(dv)) {
      mergeInto(dv, sv, overwrite);
      continue;
    }
    if (sv === undefined || sv === null) {
      continue;
    }
    if (overwrite || !hasOwn(dst, k) || isEmptyForMerge(dv)) put(dst, k, sv);
  }
  return dst;
}

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

function goJson(v: unknown, indent?: string): string {
  const s = JSON.stringify(yamlSafe(v), (_k, x) => (x === undefined ? null : x), indent);
  return s ?? 'null';
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** Converts a Go regexp to a JavaScript one (the common subset is the same). */
function goRegex(re: string, flags = ''): RegExp {
  let src = re;
  let f = flags;
  const m = /^\(\?([imsU]+)\)/.exec(src);
  if (m) {
    src = src.slice(m[0].length);
    for (const c of m[1]!) if (c !== 'U' && !f.includes(c)) f += c;
  }
  src = src
    .replace(/\\z/g, '$')
    .replace(/\\A/g, '^')
    .replace(/\[\[:(\w+):\]\]/g, (_, cls: string) => {
      const map: Record<string, string> = {
        alpha: '[A-Za-z]',
        digit: '[0-9]',
        alnum: '[A-Za-z0-9]',
        space: '\\s',
        upper: '[A-Z]',
        lower: '[a-z]',
        word: '\\w',
        xdigit: '[0-9A-Fa-f]',
        punct: '[!-/:-@\\[-`{-~]',
      };
      return map[cls] ?? '.';
    });
  return new RegExp(src, f);
}

function goReplacement(repl: string): string {
  return repl.replace(/\$\{(\w+)\}/g, (_, n: string) => (/^\d+$/.test(n) ? `$${n}` : `$<${n}>`)).replace(/\$(\d+)/g, '$$$1');
}

// ---------------------------------------------------------------------------
// printf

export function goSprintf(format: string, args: unknown[]): string {
  let out = '';
  let ai = 0;
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    let j = i + 1;
    let flags = '';
    while (j < format.length && '+-# 0'.includes(format[j]!)) flags += format[j++];
    let width = '';
    while (j < format.length && /[0-9]/.test(format[j]!)) width += format[j++];
    let prec: number | undefined;
    if (format[j] === '.') {
      j++;
      let p = '';
      while (j < format.length && /[0-9]/.test(format[j]!)) p += format[j++];
      prec = p === '' ? 0 : Number(p);
    }
    const verb = format[j];
    i = j;
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (ai >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[ai++];
    let s: string;
    switch (verb) {
      case 'v':
        s = fmtValue(a);
        break;
      case 's':
        s = a === null || a === undefined ? '%!s(<nil>)' : str(a);
        if (prec !== undefined) s = s.slice(0, prec);
        break;
      case 'q':
        s = typeof a === 'string' ? goQuote(a) : goQuote(str(a));
        break;
      case 'd':
        s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${typeName(a)}=${fmtValue(a)})`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : `%!t(${typeName(a)}=${fmtValue(a)})`;
        break;
      case 'f':
      case 'F':
        s = typeof a === 'number' ? a.toFixed(prec ?? 6) : `%!f(${typeName(a)}=${fmtValue(a)})`;
        break;
      case 'e':
        s = typeof a === 'number' ? a.toExponential(prec ?? 6).replace(/e([+-])(\d)$/, 'e$10$2') : fmtValue(a);
        break;
      case 'g':
        s = typeof a === 'number' ? (prec !== undefined ? String(Number(a.toPrecision(prec || 1))) : formatNumber(a)) : fmtValue(a);
        break;
      case 'x':
      case 'X': {
        if (typeof a === 'number') s = Math.trunc(a).toString(16);
        else s = Buffer.from(str(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'o':
        s = typeof a === 'number' ? Math.trunc(a).toString(8) : fmtValue(a);
        break;
      case 'b':
        s = typeof a === 'number' ? Math.trunc(a).toString(2) : fmtValue(a);
        break;
      case 'c':
        s = typeof a === 'number' ? String.fromCodePoint(a) : fmtValue(a);
        break;
      case 'T':
        s = typeName(a);
        break;
      default:
        s = `%!${verb}(${typeName(a)}=${fmtValue(a)})`;
    }
    if (width !== '') {
      const w = Number(width);
      if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
    }
    out += s;
  }
  if (ai < args.length)
    out +=
      '%!(EXTRA ' +
      args
        .slice(ai)
        .map((a) => `${typeName(a)}=${fmtValue(a)}`)
        .join(', ') +
      ')';
  return out;
}

/** fmt.Sprint: spaces between operands when neither side is a string. */
function goSprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += fmtValue(a);
  });
  return out;
}

// ---------------------------------------------------------------------------
// semver (Masterminds/semver, the parts charts use)

interface SemVer {
  major: number;
  minor: number;
  patch: number;
  pre: string;
  original: string;
}

export function parseSemver(v: string): SemVer | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(String(v).trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0), pre: m[4] ?? '', original: v };
}

function comparePre(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return 1;
  if (b === '') return -1;
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      if (Number(x) !== Number(y)) return Number(x) < Number(y) ? -1 : 1;
    } else if (nx) return -1;
    else if (ny) return 1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function compareSemver(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  return comparePre(a.pre, b.pre);
}

function checkTerm(term: string, v: SemVer): boolean {
  const m = /^(!=|>=|=>|<=|=<|>|<|=|~>|~|\^)?\s*v?([0-9xX*]+(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(term.trim());
  if (!m) throw new Error(`improper constraint: ${term}`);
  const op = m[1] ?? '';
  const ver = m[2]!;
  const parts = ver.split(/[-+]/)[0]!.split('.');
  const wild = (p: string | undefined) => p === undefined || p === 'x' || p === 'X' || p === '*';
  const pre = /-([0-9A-Za-z.-]+)/.exec(ver)?.[1] ?? '';
  const maj = wild(parts[0]) ? undefined : Number(parts[0]);
  const min = wild(parts[1]) ? undefined : Number(parts[1]);
  const pat = wild(parts[2]) ? undefined : Number(parts[2]);
  const c: SemVer = { major: maj ?? 0, minor: min ?? 0, patch: pat ?? 0, pre, original: ver };
  // a version with a prerelease only satisfies constraints that allow prereleases
  if (v.pre !== '' && pre === '') return false;
  const cmp = compareSemver(v, c);
  const next = (): SemVer =>
    maj === undefined
      ? { major: Infinity, minor: 0, patch: 0, pre: '', original: '' }
      : min === undefined
        ? { major: maj + 1, minor: 0, patch: 0, pre: '', original: '' }
        : { major: maj, minor: min + 1, patch: 0, pre: '', original: '' };
  switch (op) {
    case '':
    case '=':
      if (maj === undefined) return true;
      if (min === undefined || pat === undefined) return cmp >= 0 && compareSemver(v, next()) < 0;
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '>':
      if (min === undefined || pat === undefined) return compareSemver(v, next()) >= 0;
      return cmp > 0;
    case '<':
      return cmp < 0;
    case '>=':
    case '=>':
      return cmp >= 0;
    case '<=':
    case '=<':
      if (min === undefined || pat === undefined) return compareSemver(v, next()) < 0;
      return cmp <= 0;
    case '~':
    case '~>': {
      const upper = min === undefined ? { ...c, major: c.major + 1, minor: 0, patch: 0, pre: '' } : { ...c, minor: c.minor + 1, patch: 0, pre: '' };
      return cmp >= 0 && compareSemver(v, upper) < 0;
    }
    case '^': {
      let upper: SemVer;
      if (c.major > 0 || min === undefined) upper = { ...c, major: c.major + 1, minor: 0, patch: 0, pre: '' };
      else if (c.minor > 0 || pat === undefined) upper = { ...c, minor: c.minor + 1, patch: 0, pre: '' };
      else upper = { ...c, patch: c.patch + 1, pre: '' };
      return cmp >= 0 && compareSemver(v, upper) < 0;
    }
  }
  return false;
}

export function semverSatisfies(constraint: string, version: string): boolean {
  const v = parseSemver(version);
  if (!v) throw new Error(`invalid semantic version: ${version}`);
  return constraint.split('||').some((alt) => {
    let s = alt.trim();
    // hyphen ranges: "1.2 - 1.4"
    s = s.replace(/(\S+)\s+-\s+(\S+)/g, '>=$1 <=$2');
    const terms = s
      .replace(/([<>=!~^]+)\s+/g, '$1')
      .split(/[\s,]+/)
      .filter((t) => t !== '');
    return terms.every((t) => checkTerm(t, v));
  });
}

// ---------------------------------------------------------------------------
// the function map

export interface HelmFuncOptions {
  /** `lookup` always answers this (helm template answers an empty map). */
  lookup?: () => unknown;
}

function eqOne(a: unknown, b: unknown): boolean {
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (typeof a !== typeof b) return false;
  if (typeof a === 'object') return a === b;
  return a === b;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new Error(`incompatible types for comparison`);
}

function stubCert(): Record<string, string> {
  return { Cert: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----', Key: '-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----' };
}

function randString(n: unknown, alphabet: string): string {
  const len = toInt(n);
  const bytes = randomBytes(Math.max(0, len));
  let out = '';
  for (let i = 0; i < len; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function helmFuncs(opts: HelmFuncOptions = {}): Record<string, TemplateFunc> {
  const f: Record<string, TemplateFunc> = {
    // Go builtins
    not: (v: unknown) => !truth(v),
    len: (v: unknown) => {
      if (typeof v === 'string') return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (isMap(v)) return Object.keys(v).length;
      if (v === null || v === undefined) return 0;
      throw new Error(`len of type ${typeName(v)}`);
    },
    index: (v: unknown, ...keys: unknown[]) => {
      let cur = v;
      for (const k of keys) {
        if (cur === null || cur === undefined) return undefined;
        if (Array.isArray(cur)) {
          const i = toInt(k);
          if (i < 0 || i >= cur.length) throw new Error(`index out of range: ${i}`);
          cur = cur[i];
        } else if (isMap(cur)) cur = hasOwn(cur, String(k)) ? cur[String(k)] : undefined;
        else if (typeof cur === 'string') cur = cur.charCodeAt(toInt(k));
        else return undefined;
      }
      return cur;
    },
    slice: (v: unknown, ...idx: unknown[]) => {
      const a = idx[0] === undefined ? 0 : toInt(idx[0]);
      if (typeof v === 'string') return v.slice(a, idx[1] === undefined ? undefined : toInt(idx[1]));
      return list(v).slice(a, idx[1] === undefined ? undefined : toInt(idx[1]));
    },
    eq: (a: unknown, ...bs: unknown[]) => bs.some((b) => eqOne(a, b)),
    ne: (a: unknown, b: unknown) => !eqOne(a, b),
    lt: (a: unknown, b: unknown) => compare(a, b) < 0,
    le: (a: unknown, b: unknown) => compare(a, b) <= 0,
    gt: (a: unknown, b: unknown) => compare(a, b) > 0,
    ge: (a: unknown, b: unknown) => compare(a, b) >= 0,
    print: (...a: unknown[]) => goSprint(a),
    printf: (fmt: unknown, ...a: unknown[]) => goSprintf(str(fmt), a),
    println: (...a: unknown[]) => `${a.map(fmtValue).join(' ')}\n`,
    html: (...a: unknown[]) => goSprint(a).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;'),
    js: (...a: unknown[]) => JSON.stringify(goSprint(a)).slice(1, -1),
    urlquery: (...a: unknown[]) => encodeURIComponent(goSprint(a)).replace(/%20/g, '+'),
    call: (fn: unknown, ...a: unknown[]) => {
      if (typeof fn !== 'function') throw new Error(`non-function of type ${typeName(fn)}`);
      return fn(...a);
    },

    // Helm
    toYaml: (v: unknown) => toYaml(v),
    mustToYaml: (v: unknown) => toYaml(v),
    toYamlPretty: (v: unknown) => toYaml(v),
    fromYaml: (s: unknown) => {
      try {
        const v = parseYamlValue(str(s));
        return isMap(v) ? v : {};
      } catch (e) {
        return { Error: (e as Error).message };
      }
    },
    fromYamlArray: (s: unknown) => {
      try {
        const v = parseYamlValue(str(s));
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [(e as Error).message];
      }
    },
    toJson: (v: unknown) => goJson(v),
    mustToJson: (v: unknown) => goJson(v),
    toRawJson: (v: unknown) => goJson(v),
    mustToRawJson: (v: unknown) => goJson(v),
    toPrettyJson: (v: unknown) => goJson(v, '  '),
    mustToPrettyJson: (v: unknown) => goJson(v, '  '),
    fromJson: (s: unknown) => {
      try {
        const v: unknown = JSON.parse(str(s));
        return isMap(v) ? v : {};
      } catch (e) {
        return { Error: (e as Error).message };
      }
    },
    fromJsonArray: (s: unknown) => {
      try {
        const v: unknown = JSON.parse(str(s));
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [(e as Error).message];
      }
    },
    toToml: (v: unknown) => goJson(v),
    required: (msg: unknown, v: unknown) => {
      if (v === null || v === undefined || v === '') throw new TemplateExecError(str(msg), undefined);
      return v;
    },
    fail: (msg: unknown) => {
      throw new TemplateExecError(str(msg), undefined);
    },
    lookup: () => (opts.lookup ? opts.lookup() : {}),

    // defaults / flow
    default: (d: unknown, ...given: unknown[]) => {
      const g = given[0];
      return given.length === 0 || isEmpty(g) ? d : g;
    },
    empty: (v: unknown) => isEmpty(v),
    coalesce: (...a: unknown[]) => a.find((x) => !isEmpty(x)),
    all: (...a: unknown[]) => a.every((x) => !isEmpty(x)),
    any: (...a: unknown[]) => a.some((x) => !isEmpty(x)),
    ternary: (a: unknown, b: unknown, c: unknown) => (truth(c) ? a : b),
    deepCopy: (v: unknown) => deepCopy(v),
    mustDeepCopy: (v: unknown) => deepCopy(v),
    deepEqual: (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b),

    // strings
    trim: (s: unknown) => str(s).trim(),
    trimAll: (cut: unknown, s: unknown) => {
      const chars = str(cut);
      let v = str(s);
      while (v.length > 0 && chars.includes(v[0]!)) v = v.slice(1);
      while (v.length > 0 && chars.includes(v[v.length - 1]!)) v = v.slice(0, -1);
      return v;
    },
    trimPrefix: (p: unknown, s: unknown) => (str(s).startsWith(str(p)) ? str(s).slice(str(p).length) : str(s)),
    trimSuffix: (p: unknown, s: unknown) => (str(p) !== '' && str(s).endsWith(str(p)) ? str(s).slice(0, -str(p).length) : str(s)),
    upper: (s: unknown) => str(s).toUpperCase(),
    lower: (s: unknown) => str(s).toLowerCase(),
    title: (s: unknown) => str(s).replace(/(^|[^A-Za-z0-9'])([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase()),
    untitle: (s: unknown) => str(s).replace(/(^|\s)([A-Z])/g, (_m, a: string, b: string) => a + b.toLowerCase()),
    repeat: (n: unknown, s: unknown) => str(s).repeat(Math.max(0, toInt(n))),
    substr: (a: unknown, b: unknown, s: unknown) => {
      const v = str(s);
      const start = toInt(a);
      const end = toInt(b);
      if (start < 0) return v.slice(0, end);
      if (end < 0 || end > v.length) return v.slice(start);
      return v.slice(start, end);
    },
    nospace: (s: unknown) => str(s).replace(/\s+/g, ''),
    trunc: (n: unknown, s: unknown) => {
      const c = toInt(n);
      const v = str(s);
      if (c < 0 && v.length + c > 0) return v.slice(v.length + c);
      if (c >= 0 && v.length > c) return v.slice(0, c);
      return v;
    },
    abbrev: (n: unknown, s: unknown) => {
      const w = toInt(n);
      const v = str(s);
      return w < 4 || v.length <= w ? v : `${v.slice(0, w - 3)}...`;
    },
    initials: (s: unknown) =>
      str(s)
        .split(/\s+/)
        .filter(Boolean)
        .map((w) => w[0])
        .join(''),
    randAlphaNum: (n: unknown) => randString(n, ALNUM),
    randAlpha: (n: unknown) => randString(n, ALNUM.slice(0, 52)),
    randNumeric: (n: unknown) => randString(n, '0123456789'),
    randAscii: (n: unknown) => randString(n, `${ALNUM}!#$%&()*+,-./:;<=>?@[]^_{|}~`),
    wrap: (_n: unknown, s: unknown) => str(s),
    wrapWith: (_n: unknown, _w: unknown, s: unknown) => str(s),
    contains: (sub: unknown, s: unknown) => str(s).includes(str(sub)),
    hasPrefix: (p: unknown, s: unknown) => str(s).startsWith(str(p)),
    hasSuffix: (p: unknown, s: unknown) => str(s).endsWith(str(p)),
    quote: (...a: unknown[]) =>
      a
        .filter((x) => x !== null && x !== undefined)
        .map((x) => goQuote(str(x)))
        .join(' '),
    squote: (...a: unknown[]) =>
      a
        .filter((x) => x !== null && x !== undefined)
        .map((x) => `'${str(x)}'`)
        .join(' '),
    cat: (...a: unknown[]) =>
      a
        .filter((x) => x !== null && x !== undefined)
        .map(str)
        .join(' '),
    indent: (n: unknown, s: unknown) => {
      const pad = ' '.repeat(Math.max(0, toInt(n)));
      return pad + str(s).replaceAll('\n', `\n${pad}`);
    },
    nindent: (n: unknown, s: unknown) => {
      const pad = ' '.repeat(Math.max(0, toInt(n)));
      return `\n${pad}${str(s).replaceAll('\n', `\n${pad}`)}`;
    },
    replace: (old: unknown, nw: unknown, s: unknown) => str(s).replaceAll(str(old), str(nw)),
    plural: (one: unknown, many: unknown, n: unknown) => (toInt(n) === 1 ? str(one) : str(many)),
    snakecase: (s: unknown) =>
      str(s)
        .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
        .replace(/[-\s]+/g, '_')
        .toLowerCase(),
    kebabcase: (s: unknown) =>
      str(s)
        .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
        .replace(/[_\s]+/g, '-')
        .toLowerCase(),
    camelcase: (s: unknown) =>
      str(s)
        .split(/[_\s-]+/)
        .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ''))
        .join(''),
    swapcase: (s: unknown) => [...str(s)].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join(''),
    shuffle: (s: unknown) => str(s),
    toString: (v: unknown) => str(v),
    toStrings: (v: unknown) => list(v).map(str),
    join: (sep: unknown, v: unknown) => (Array.isArray(v) ? v.map(str).join(str(sep)) : str(v)),
    splitList: (sep: unknown, s: unknown) => str(s).split(str(sep)),
    split: (sep: unknown, s: unknown) => {
      const out: Record<string, string> = {};
      for (const [i, p] of str(s).split(str(sep)).entries()) out[`_${i}`] = p;
      return out;
    },
    splitn: (sep: unknown, n: unknown, s: unknown) => {
      const parts = str(s).split(str(sep));
      const k = toInt(n);
      const res = k > 0 && parts.length > k ? [...parts.slice(0, k - 1), parts.slice(k - 1).join(str(sep))] : parts;
      const out: Record<string, string> = {};
      for (const [i, p] of res.entries()) out[`_${i}`] = p;
      return out;
    },
    sortAlpha: (v: unknown) => list(v).map(str).sort(),
    regexMatch: (re: unknown, s: unknown) => goRegex(str(re)).test(str(s)),
    mustRegexMatch: (re: unknown, s: unknown) => goRegex(str(re)).test(str(s)),
    regexFind: (re: unknown, s: unknown) => goRegex(str(re)).exec(str(s))?.[0] ?? '',
    mustRegexFind: (re: unknown, s: unknown) => goRegex(str(re)).exec(str(s))?.[0] ?? '',
    regexFindAll: (re: unknown, s: unknown, n: unknown) => {
      const all = [...str(s).matchAll(goRegex(str(re), 'g'))].map((m) => m[0]);
      const k = toInt(n);
      return k < 0 ? all : all.slice(0, k);
    },
    regexReplaceAll: (re: unknown, s: unknown, repl: unknown) => str(s).replace(goRegex(str(re), 'g'), goReplacement(str(repl))),
    mustRegexReplaceAll: (re: unknown, s: unknown, repl: unknown) => str(s).replace(goRegex(str(re), 'g'), goReplacement(str(repl))),
    regexReplaceAllLiteral: (re: unknown, s: unknown, repl: unknown) => str(s).replace(goRegex(str(re), 'g'), () => str(repl)),
    regexSplit: (re: unknown, s: unknown, n: unknown) => {
      const parts = str(s).split(goRegex(str(re)));
      const k = toInt(n);
      return k < 0 ? parts : parts.slice(0, k);
    },
    regexQuoteMeta: (s: unknown) => str(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),

    // numbers
    atoi: (s: unknown) => toInt(s),
    int: (v: unknown) => toInt(v),
    int64: (v: unknown) => toInt(v),
    float64: (v: unknown) => toFloat(v),
    toDecimal: (v: unknown) => parseInt(str(v), 8) || 0,
    add: (...a: unknown[]) => a.reduce<number>((s, x) => s + toInt(x), 0),
    add1: (v: unknown) => toInt(v) + 1,
    sub: (a: unknown, b: unknown) => toInt(a) - toInt(b),
    mul: (...a: unknown[]) => a.reduce<number>((s, x) => s * toInt(x), 1),
    div: (a: unknown, b: unknown) => Math.trunc(toInt(a) / toInt(b)),
    mod: (a: unknown, b: unknown) => toInt(a) % toInt(b),
    max: (...a: unknown[]) => Math.max(...a.map(toInt)),
    min: (...a: unknown[]) => Math.min(...a.map(toInt)),
    addf: (...a: unknown[]) => a.reduce<number>((s, x) => s + toFloat(x), 0),
    add1f: (v: unknown) => toFloat(v) + 1,
    subf: (a: unknown, ...b: unknown[]) => b.reduce<number>((s, x) => s - toFloat(x), toFloat(a)),
    mulf: (...a: unknown[]) => a.reduce<number>((s, x) => s * toFloat(x), 1),
    divf: (a: unknown, ...b: unknown[]) => b.reduce<number>((s, x) => s / toFloat(x), toFloat(a)),
    maxf: (...a: unknown[]) => Math.max(...a.map(toFloat)),
    minf: (...a: unknown[]) => Math.min(...a.map(toFloat)),
    floor: (v: unknown) => Math.floor(toFloat(v)),
    ceil: (v: unknown) => Math.ceil(toFloat(v)),
    round: (v: unknown, p: unknown) => {
      const m = 10 ** toInt(p);
      return Math.round(toFloat(v) * m) / m;
    },
    until: (n: unknown) => Array.from({ length: Math.max(0, toInt(n)) }, (_, i) => i),
    untilStep: (a: unknown, b: unknown, step: unknown) => {
      const out: number[] = [];
      const s = toInt(step);
      if (s === 0) return out;
      for (let i = toInt(a); s > 0 ? i < toInt(b) : i > toInt(b); i += s) out.push(i);
      return out;
    },
    seq: (...a: unknown[]) => {
      const n = a.map(toInt);
      const [start, step, end] = n.length === 1 ? [1, 1, n[0]!] : n.length === 2 ? [n[0]!, n[0]! <= n[1]! ? 1 : -1, n[1]!] : [n[0]!, n[1]!, n[2]!];
      const out: number[] = [];
      if (step === 0) return '';
      for (let i = start; step > 0 ? i <= end : i >= end; i += step) out.push(i);
      return out.join(' ');
    },

    // lists
    list: (...a: unknown[]) => a,
    tuple: (...a: unknown[]) => a,
    first: (v: unknown) => list(v)[0],
    mustFirst: (v: unknown) => list(v)[0],
    last: (v: unknown) => list(v).at(-1),
    mustLast: (v: unknown) => list(v).at(-1),
    rest: (v: unknown) => list(v).slice(1),
    mustRest: (v: unknown) => list(v).slice(1),
    initial: (v: unknown) => list(v).slice(0, -1),
    append: (v: unknown, x: unknown) => [...list(v), x],
    mustAppend: (v: unknown, x: unknown) => [...list(v), x],
    push: (v: unknown, x: unknown) => [...list(v), x],
    mustPush: (v: unknown, x: unknown) => [...list(v), x],
    prepend: (v: unknown, x: unknown) => [x, ...list(v)],
    mustPrepend: (v: unknown, x: unknown) => [x, ...list(v)],
    concat: (...a: unknown[]) => a.flatMap((x) => list(x)),
    reverse: (v: unknown) => [...list(v)].reverse(),
    uniq: (v: unknown) => {
      const out: unknown[] = [];
      for (const x of list(v)) if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
      return out;
    },
    mustUniq: (v: unknown) => f.uniq!(v),
    without: (v: unknown, ...drop: unknown[]) => list(v).filter((x) => !drop.some((d) => JSON.stringify(d) === JSON.stringify(x))),
    has: (needle: unknown, hay: unknown) => list(hay).some((x) => JSON.stringify(x) === JSON.stringify(needle)),
    mustHas: (needle: unknown, hay: unknown) => list(hay).some((x) => JSON.stringify(x) === JSON.stringify(needle)),
    compact: (v: unknown) => list(v).filter((x) => !isEmpty(x)),
    mustCompact: (v: unknown) => list(v).filter((x) => !isEmpty(x)),
    chunk: (n: unknown, v: unknown) => {
      const size = Math.max(1, toInt(n));
      const l = list(v);
      const out: unknown[][] = [];
      for (let i = 0; i < l.length; i += size) out.push(l.slice(i, i + size));
      return out;
    },

    // dicts
    dict: (...a: unknown[]) => {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < a.length; i += 2) put(out, str(a[i]), a[i + 1]);
      return out;
    },
    get: (d: unknown, k: unknown) => (isMap(d) && hasOwn(d, str(k)) ? d[str(k)] : ''),
    set: (d: unknown, k: unknown, v: unknown) => {
      if (isMap(d)) put(d, str(k), v);
      return d;
    },
    unset: (d: unknown, k: unknown) => {
      if (isMap(d)) delete d[str(k)];
      return d;
    },
    hasKey: (d: unknown, k: unknown) => isMap(d) && hasOwn(d, str(k)),
    pluck: (k: unknown, ...ds: unknown[]) => ds.filter((d) => isMap(d) && hasOwn(d, str(k))).map((d) => (d as Record<string, unknown>)[str(k)]),
    dig: (...a: unknown[]) => {
      const d = a.at(-1);
      const def = a.at(-2);
      const keys = a.slice(0, -2).map(str);
      let cur: unknown = d;
      for (const k of keys) {
        if (!isMap(cur) || !hasOwn(cur, k)) return def;
        cur = cur[k];
      }
      return cur;
    },
    keys: (...ds: unknown[]) => ds.flatMap((d) => (isMap(d) ? Object.keys(d) : [])),
    values: (d: unknown) => (isMap(d) ? Object.values(d) : []),
    pick: (d: unknown, ...ks: unknown[]) => {
      const out: Record<string, unknown> = {};
      if (isMap(d)) for (const k of ks.map(str)) if (hasOwn(d, k)) put(out, k, d[k]);
      return out;
    },
    omit: (d: unknown, ...ks: unknown[]) => {
      const out: Record<string, unknown> = {};
      const drop = new Set(ks.map(str));
      if (isMap(d)) for (const k of Object.keys(d)) if (!drop.has(k)) put(out, k, d[k]);
      return out;
    },
    merge: (dst: unknown, ...srcs: unknown[]) => {
      const d = isMap(dst) ? dst : {};
      for (const s of srcs) if (isMap(s)) mergeInto(d, s, false);
      return d;
    },
    mustMerge: (dst: unknown, ...srcs: unknown[]) => f.merge!(dst, ...srcs),
    mergeOverwrite: (dst: unknown, ...srcs: unknown[]) => {
      const d = isMap(dst) ? dst : {};
      for (const s of srcs) if (isMap(s)) mergeInto(d, s, true);
      return d;
    },
    mustMergeOverwrite: (dst: unknown, ...srcs: unknown[]) => f.mergeOverwrite!(dst, ...srcs),

    // types
    typeOf: (v: unknown) => typeName(v),
    kindOf: (v: unknown) => kindName(v),
    kindIs: (k: unknown, v: unknown) => {
      const kind = kindName(v);
      const want = str(k);
      if (typeof v === 'number') return want === kind || want === 'float64' || want === 'int' || want === 'int64';
      return kind === want;
    },
    typeIs: (t: unknown, v: unknown) => {
      const want = str(t);
      if (typeof v === 'number') return want === typeName(v) || want === 'float64' || want === 'int' || want === 'int64';
      return typeName(v) === want;
    },
    typeIsLike: (t: unknown, v: unknown) => typeName(v) === str(t).replace(/^\*/, ''),

    // encoding / crypto
    b64enc: (s: unknown) => Buffer.from(str(s)).toString('base64'),
    b64dec: (s: unknown) => Buffer.from(str(s), 'base64').toString(),
    b32enc: (s: unknown) => str(s),
    b32dec: (s: unknown) => str(s),
    sha1sum: (s: unknown) => createHash('sha1').update(str(s)).digest('hex'),
    sha256sum: (s: unknown) => createHash('sha256').update(str(s)).digest('hex'),
    sha512sum: (s: unknown) => createHash('sha512').update(str(s)).digest('hex'),
    adler32sum: (s: unknown) => {
      let a = 1;
      let b = 0;
      for (const byte of Buffer.from(str(s))) {
        a = (a + byte) % 65521;
        b = (b + a) % 65521;
      }
      return String(((b << 16) | a) >>> 0);
    },
    uuidv4: () => randomUUID(),
    genPrivateKey: () => stubCert().Key,
    genCA: () => stubCert(),
    genCAWithKey: () => stubCert(),
    genSelfSignedCert: () => stubCert(),
    genSelfSignedCertWithKey: () => stubCert(),
    genSignedCert: () => stubCert(),
    genSignedCertWithKey: () => stubCert(),
    buildCustomCert: () => stubCert(),
    htpasswd: (u: unknown) => `${str(u)}:$2a$10$placeholder`,
    derivePassword: () => 'placeholder',
    encryptAES: (_k: unknown, s: unknown) => Buffer.from(str(s)).toString('base64'),
    decryptAES: (_k: unknown, s: unknown) => Buffer.from(str(s), 'base64').toString(),
    bcrypt: () => '$2a$10$placeholder',

    // semver
    semverCompare: (c: unknown, v: unknown) => semverSatisfies(str(c), str(v)),
    semver: (v: unknown) => {
      const s = parseSemver(str(v));
      if (!s) throw new Error(`invalid semantic version ${str(v)}`);
      return { Major: s.major, Minor: s.minor, Patch: s.patch, Prerelease: s.pre, Metadata: '', Original: s.original };
    },

    // dates (fixed: discovery must not depend on the clock)
    now: () => '2000-01-01T00:00:00Z',
    date: () => '2000-01-01',
    dateInZone: () => '2000-01-01',
    htmlDate: () => '2000-01-01',
    htmlDateInZone: () => '2000-01-01',
    dateModify: (_m: unknown, d: unknown) => d,
    toDate: (_f: unknown, s: unknown) => str(s),
    unixEpoch: () => '946684800',
    ago: () => '0s',
    duration: (s: unknown) => `${toInt(s)}s`,

    // paths, urls, network
    base: (p: unknown) => posix.basename(str(p)),
    dir: (p: unknown) => posix.dirname(str(p)),
    clean: (p: unknown) => posix.normalize(str(p)),
    ext: (p: unknown) => posix.extname(str(p)),
    isAbs: (p: unknown) => posix.isAbsolute(str(p)),
    osBase: (p: unknown) => posix.basename(str(p)),
    osDir: (p: unknown) => posix.dirname(str(p)),
    urlParse: (u: unknown) => {
      try {
        const url = new URL(str(u));
        return {
          scheme: url.protocol.replace(/:$/, ''),
          host: url.host,
          hostname: url.hostname,
          port: url.port,
          path: url.pathname,
          query: url.search.replace(/^\?/, ''),
          fragment: url.hash.replace(/^#/, ''),
          userinfo: url.username,
        };
      } catch {
        return {};
      }
    },
    urlJoin: (d: unknown) => (isMap(d) ? `${str(d.scheme ?? '')}://${str(d.host ?? '')}${str(d.path ?? '')}` : ''),
    getHostByName: () => '',
  };
  return f;
}

/** All YAML documents of a multi-document text, each parsed (errors per document). */
export function yamlDocuments(text: string) {
  return parseAllDocuments(text, { version: '1.1', merge: true, uniqueKeys: false });
}
