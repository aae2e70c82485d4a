/**
 * The functions Go's text/template predefines (not, len, index, slice, eq…,
 * print, printf, println, html, js, urlquery, call), with fmt's formatting of
 * values (`%v`, `%s`, `%q`, `%d`… and fmt's error notes for wrong operands).
 * `and` and `or` short-circuit, so the executor evaluates them itself.
 */
import { fmtValue, formatNumber, hasOwn, isMap, type TemplateFunc, truth } from '../template/exec.js';
import { list, str, toInt, typeName } from './convert.js';

/** A Go-quoted string (`%q`, Sprig's `quote`). */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** fmt.Sprintf with Go's verbs and its notes for missing, extra and mismatched operands. */
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

export function goFuncs(): Record<string, TemplateFunc> {
  return {
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
  };
}
