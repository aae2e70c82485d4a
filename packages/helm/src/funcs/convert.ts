/**
 * How template values convert and compare, shared by the function families:
 * Sprig's `empty` and string conversion, Go's type and kind names, and the
 * deep copy and mergo-style merge that `merge` and values coalescing use.
 */
import { fmtValue, hasOwn, isMap, put, TemplateExecError } from '../template/exec.js';

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

export function toInt(v: unknown): number {
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

export function toFloat(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

export function list(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined) return [];
  throw new TemplateExecError(`cannot use ${typeName(v)} as a list`, undefined);
}

export function typeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return '[]interface {}';
  if (isMap(v)) return 'map[string]interface {}';
  return 'object';
}

export function kindName(v: unknown): string {
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
