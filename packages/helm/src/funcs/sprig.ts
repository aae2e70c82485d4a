/**
 * The Sprig library (Masterminds/sprig v3, the part charts use): defaults and
 * flow, strings, numbers, lists, dicts, types, encoding and hashes, semver,
 * dates, paths and URLs. Functions that make secrets or certificates return
 * placeholders and dates are fixed: discovery never needs their output, and
 * must not depend on the clock or on chance.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { jsonText } from '../encoding.js';
import { hasOwn, isMap, put, TemplateExecError, type TemplateFunc, truth } from '../template/exec.js';
import { deepCopy, isEmpty, kindName, list, mergeInto, str, toFloat, toInt, typeName } from './convert.js';
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

function goReplacement(repl: string): string {
  return repl.replace(/\$\{(\w+)\}/g, (_, n: string) => (/^\d+$/.test(n) ? `$${n}` : `$<${n}>`)).replace(/\$(\d+)/g, '$$$1');
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

export function sprigFuncs(): Record<string, TemplateFunc> {
  const f: Record<string, TemplateFunc> = {
    toRawJson: (v: unknown) => jsonText(v),
    mustToRawJson: (v: unknown) => jsonText(v),
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
