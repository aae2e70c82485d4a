/**
 * The Sprig library (Masterminds/sprig v3.3, all of it but env and expandenv,
 * which helm removes): defaults and flow, strings, numbers, lists, dicts,
 * types, encoding and hashes, semver, paths and URLs; dates (dates.ts) and
 * crypto (crypto.ts) are their own modules. Random and clock functions are
 * real. getHostByName answers "" instead of asking DNS: rendering must not
 * depend on the network of the machine that packs the bundle.
 */
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { jsonText } from '../encoding.js';
import { hasOwn, isMap, put, TemplateExecError, type TemplateFunc, truth } from '../template/exec.js';
import { deepCopy, isEmpty, kindName, list, mergeInto, str, toFloat, toInt, typeName } from './convert.js';
import { cryptoFuncs } from './crypto.js';
import { dateFuncs } from './dates.js';
import { goQuote } from './go.js';
import { parseSemver, semverSatisfies } from './semver.js';

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

/** A Go regexp for the must* functions: a bad one is the template's error, worded as Go's regexp does. */
function mustRegex(re: unknown, flags = ''): RegExp {
  try {
    return goRegex(str(re), flags);
  } catch (e) {
    throw new Error(`error parsing regexp: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** regexp.Split: n > 0 at most n parts (the last the rest), 0 none, < 0 all. */
function goSplit(re: RegExp, s: string, n: number): string[] {
  if (n === 0) return [];
  if (s === '') return [''];
  const out: string[] = [];
  let start = 0;
  for (const m of s.matchAll(re)) {
    if (n > 0 && out.length === n - 1) break;
    if (m[0] === '' && (m.index === 0 || m.index === s.length)) continue;
    out.push(s.slice(start, m.index));
    start = m.index + m[0].length;
  }
  out.push(s.slice(start));
  return out;
}

/** goutils.WrapCustom: lines of at most `width` characters broken at spaces; longer words kept whole unless `long`. */
function wrapText(s: string, width: number, nl: string, long: boolean): string {
  if (s === '') return '';
  const w = Math.max(1, width);
  const sep = nl === '' ? '\n' : nl;
  let out = '';
  let offset = 0;
  while (s.length - offset > w) {
    if (s[offset] === ' ') {
      offset++;
      continue;
    }
    const at = s.slice(offset, w + offset + 1).lastIndexOf(' ');
    if (at >= 0) {
      out += s.slice(offset, offset + at) + sep;
      offset += at + 1;
    } else if (long) {
      out += s.slice(offset, offset + w) + sep;
      offset += w;
    } else {
      const next = s.indexOf(' ', w + offset);
      if (next < 0) {
        out += s.slice(offset);
        offset = s.length;
      } else {
        out += s.slice(offset, next) + sep;
        offset = next + 1;
      }
    }
  }
  return out + s.slice(offset);
}

/** RFC 4648 base32 with padding (Go's base32.StdEncoding). */
const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}
function unbase32(s: string): Buffer {
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s.replace(/=+$/, '')) {
    const i = B32.indexOf(c);
    if (i < 0) throw new TemplateExecError(`illegal base32 data`, undefined);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

/** goutils.AbbreviateFull: `...` on the left past `offset`, on the right past `width`. */
function abbrevBoth(offset: number, width: number, s: string): string {
  if (s === '' || width < 4 || s.length <= width) return s;
  let off = Math.min(offset, s.length);
  if (s.length - off < width - 3) off = s.length - (width - 3);
  if (off <= 4) return `${s.slice(0, width - 3)}...`;
  if (width < 7) return s;
  if (off + width - 3 < s.length) return `...${abbrevRight(s.slice(off), width - 3)}`;
  return `...${s.slice(s.length - (width - 3))}`;
}
function abbrevRight(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 3)}...`;
}

/** Go's url.Parse, as sprig's urlParse reports it (the query raw, path and fragment unescaped). */
function goUrlParse(u: string): Record<string, string> {
  const m = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):)?(?:\/\/(?:([^@/?#]*)@)?([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(u);
  if (!m) throw new TemplateExecError(`unable to parse url: ${u}`, undefined);
  const [, scheme = '', user, host = '', rest = '', query = '', fragment = ''] = m;
  const opaque = scheme !== '' && m[3] === undefined && !rest.startsWith('/') ? rest : '';
  const decode = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  return {
    scheme: scheme.toLowerCase(),
    host,
    hostname: host.replace(/:\d*$/, '').replace(/^\[(.*)\]$/, '$1'),
    path: opaque ? '' : decode(rest),
    query,
    opaque,
    fragment: decode(fragment),
    userinfo: user ?? '',
  };
}

/** Go's url.URL.String for sprig's urlJoin. */
function goUrlString(d: Record<string, unknown>): string {
  const get = (k: string) => (hasOwn(d, k) ? str(d[k]) : '');
  let out = get('scheme') ? `${get('scheme')}:` : '';
  if (get('opaque')) out += get('opaque');
  else {
    const path = encodeURI(get('path')).replace(/[?#]/g, encodeURIComponent);
    if (get('scheme') || get('host') || get('userinfo')) {
      if (get('host') || path || get('userinfo')) out += '//';
      if (get('userinfo')) out += `${get('userinfo')}@`;
      out += get('host');
    }
    out += get('host') && path && !path.startsWith('/') ? `/${path}` : path;
  }
  if (get('query')) out += `?${get('query')}`;
  if (get('fragment')) out += `#${encodeURI(get('fragment'))}`;
  return out;
}

function goReplacement(repl: string): string {
  return repl.replace(/\$\{(\w+)\}/g, (_, n: string) => (/^\d+$/.test(n) ? `$${n}` : `$<${n}>`)).replace(/\$(\d+)/g, '$$$1');
}

function randString(n: unknown, alphabet: string): string {
  const len = toInt(n);
  const bytes = randomBytes(Math.max(0, len));
  let out = '';
  for (let i = 0; i < len; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function sprigFuncs(): Record<string, TemplateFunc> {
  const f: Record<string, TemplateFunc> = {
    toRawJson: (v: unknown) => jsonText(v, '', true),
    mustToRawJson: (v: unknown) => jsonText(v, '', true),
    mustFromJson: (s: unknown) => {
      try {
        return JSON.parse(str(s)) as unknown;
      } catch (e) {
        throw new Error((e as Error).message);
      }
    },
    hello: () => 'Hello!',
    toPrettyJson: (v: unknown) => jsonText(v, '  '),
    mustToPrettyJson: (v: unknown) => jsonText(v, '  '),
    fail: (msg: unknown) => {
      throw new TemplateExecError(str(msg), undefined);
    },

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
    randAscii: (n: unknown) => randString(n, String.fromCharCode(...Array.from({ length: 95 }, (_, i) => 32 + i))),
    randBytes: (n: unknown) => randomBytes(Math.max(0, toInt(n))).toString('base64'),
    randInt: (lo: unknown, hi: unknown) => {
      const a = toInt(lo);
      const b = toInt(hi);
      if (b <= a) throw new TemplateExecError('invalid argument to Intn', undefined);
      return a + randomInt(b - a);
    },
    wrap: (n: unknown, s: unknown) => wrapText(str(s), toInt(n), '\n', false),
    wrapWith: (n: unknown, nl: unknown, s: unknown) => wrapText(str(s), toInt(n), str(nl), true),
    abbrevboth: (left: unknown, right: unknown, s: unknown) => abbrevBoth(toInt(left), toInt(right), str(s)),
    trimall: (cut: unknown, s: unknown) => f.trimAll!(cut, s),
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
    shuffle: (s: unknown) => {
      const chars = [...str(s)];
      for (let i = chars.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [chars[i], chars[j]] = [chars[j]!, chars[i]!];
      }
      return chars.join('');
    },
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
    mustRegexMatch: (re: unknown, s: unknown) => mustRegex(re).test(str(s)),
    regexFind: (re: unknown, s: unknown) => goRegex(str(re)).exec(str(s))?.[0] ?? '',
    mustRegexFind: (re: unknown, s: unknown) => mustRegex(re).exec(str(s))?.[0] ?? '',
    regexFindAll: (re: unknown, s: unknown, n: unknown) => {
      const all = [...str(s).matchAll(goRegex(str(re), 'g'))].map((m) => m[0]);
      const k = toInt(n);
      return k < 0 ? all : all.slice(0, k);
    },
    regexReplaceAll: (re: unknown, s: unknown, repl: unknown) => str(s).replace(goRegex(str(re), 'g'), goReplacement(str(repl))),
    mustRegexReplaceAll: (re: unknown, s: unknown, repl: unknown) => str(s).replace(mustRegex(re, 'g'), goReplacement(str(repl))),
    regexReplaceAllLiteral: (re: unknown, s: unknown, repl: unknown) => str(s).replace(goRegex(str(re), 'g'), () => str(repl)),
    regexSplit: (re: unknown, s: unknown, n: unknown) => goSplit(goRegex(str(re), 'g'), str(s), toInt(n)),
    mustRegexSplit: (re: unknown, s: unknown, n: unknown) => goSplit(mustRegex(re, 'g'), str(s), toInt(n)),
    mustRegexFindAll: (re: unknown, s: unknown, n: unknown) => {
      const all = [...str(s).matchAll(mustRegex(re, 'g'))].map((m) => m[0]);
      const k = toInt(n);
      return k < 0 ? all : all.slice(0, k);
    },
    mustRegexReplaceAllLiteral: (re: unknown, s: unknown, repl: unknown) => str(s).replace(mustRegex(re, 'g'), () => str(repl)),
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
    biggest: (...a: unknown[]) => Math.max(...a.map(toInt)),
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
    mustInitial: (v: unknown) => list(v).slice(0, -1),
    append: (v: unknown, x: unknown) => [...list(v), x],
    mustAppend: (v: unknown, x: unknown) => [...list(v), x],
    push: (v: unknown, x: unknown) => [...list(v), x],
    mustPush: (v: unknown, x: unknown) => [...list(v), x],
    prepend: (v: unknown, x: unknown) => [x, ...list(v)],
    mustPrepend: (v: unknown, x: unknown) => [x, ...list(v)],
    concat: (...a: unknown[]) => a.flatMap((x) => list(x)),
    reverse: (v: unknown) => [...list(v)].reverse(),
    mustReverse: (v: unknown) => [...list(v)].reverse(),
    mustSlice: (v: unknown, ...idx: unknown[]) => {
      const l = list(v);
      const a = idx[0] === undefined ? 0 : toInt(idx[0]);
      const b = idx[1] === undefined ? l.length : toInt(idx[1]);
      if (a < 0 || b > l.length || a > b) throw new Error('reflect.Value.Slice: slice index out of bounds');
      return l.slice(a, b);
    },
    uniq: (v: unknown) => {
      const out: unknown[] = [];
      for (const x of list(v)) if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
      return out;
    },
    mustUniq: (v: unknown) => f.uniq!(v),
    without: (v: unknown, ...drop: unknown[]) => list(v).filter((x) => !drop.some((d) => JSON.stringify(d) === JSON.stringify(x))),
    mustWithout: (v: unknown, ...drop: unknown[]) => f.without!(v, ...drop),
    has: (needle: unknown, hay: unknown) => list(hay).some((x) => JSON.stringify(x) === JSON.stringify(needle)),
    mustHas: (needle: unknown, hay: unknown) => list(hay).some((x) => JSON.stringify(x) === JSON.stringify(needle)),
    compact: (v: unknown) => list(v).filter((x) => !isEmpty(x)),
    mustCompact: (v: unknown) => list(v).filter((x) => !isEmpty(x)),
    mustChunk: (n: unknown, v: unknown) => f.chunk!(n, v),
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
    b32enc: (s: unknown) => base32(Buffer.from(str(s))),
    b32dec: (s: unknown) => {
      try {
        return unbase32(str(s)).toString();
      } catch (e) {
        return (e as Error).message;
      }
    },
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
    ...cryptoFuncs(),

    // semver
    semverCompare: (c: unknown, v: unknown) => semverSatisfies(str(c), str(v)),
    semver: (v: unknown) => {
      const s = parseSemver(str(v));
      if (!s) throw new Error(`invalid semantic version ${str(v)}`);
      return { Major: s.major, Minor: s.minor, Patch: s.patch, Prerelease: s.pre, Metadata: '', Original: s.original };
    },

    ...dateFuncs(),

    // paths, urls, network
    base: (p: unknown) => posix.basename(str(p)),
    dir: (p: unknown) => posix.dirname(str(p)),
    // path.Clean: no trailing slash, "." for nothing
    clean: (p: unknown) => (str(p) === '' ? '.' : posix.normalize(str(p)).replace(/(.)\/$/, '$1')),
    ext: (p: unknown) => posix.extname(str(p)),
    isAbs: (p: unknown) => posix.isAbsolute(str(p)),
    osBase: (p: unknown) => posix.basename(str(p)),
    osDir: (p: unknown) => posix.dirname(str(p)),
    osClean: (p: unknown) => f.clean!(p),
    osExt: (p: unknown) => posix.extname(str(p)),
    osIsAbs: (p: unknown) => posix.isAbsolute(str(p)),
    urlParse: (u: unknown) => goUrlParse(str(u)),
    urlJoin: (d: unknown) => (isMap(d) ? goUrlString(d) : ''),
    getHostByName: () => '',
  };
  return f;
}
