/**
 * TOML for Helm's toToml and fromToml (BurntSushi/toml): the encoder writes a
 * table's plain keys first, then its sub-tables (`[a.b]`, indented two spaces a
 * level, a blank line before each top-level table); the decoder reads the TOML
 * charts hand to it (tables, arrays of tables, dotted and quoted keys, strings,
 * numbers, booleans, arrays and inline tables).
 */
import { isMap, put } from './template/exec.js';

const BARE = /^[A-Za-z0-9_-]+$/;

function tomlKey(k: string): string {
  return BARE.test(k) ? k : tomlString(k);
}

function tomlString(s: string): string {
  let out = '"';
  for (const c of s) {
    const n = c.codePointAt(0)!;
    if (c === '"') out += '\\"';
    else if (c === '\\') out += '\\\\';
    else if (c === '\b') out += '\\b';
    else if (c === '\t') out += '\\t';
    else if (c === '\n') out += '\\n';
    else if (c === '\f') out += '\\f';
    else if (c === '\r') out += '\\r';
    else if (n < 0x20 || n === 0x7f) out += `\\u${n.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

const isTable = (v: unknown): v is Record<string, unknown> => isMap(v);
const isTableArray = (v: unknown): v is Record<string, unknown>[] => Array.isArray(v) && v.length > 0 && v.every(isTable);

function tomlValue(v: unknown): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v))
    return `[${v
      .filter((x) => x !== null && x !== undefined)
      .map(tomlValue)
      .join(', ')}]`;
  if (isTable(v))
    return `{${Object.keys(v)
      .sort()
      .filter((k) => v[k] !== null && v[k] !== undefined)
      .map((k) => `${tomlKey(k)} = ${tomlValue(v[k])}`)
      .join(', ')}}`;
  return tomlString(String(v));
}

/** toToml: the TOML document of a map (what BurntSushi's encoder writes, with its final newline). */
export function toToml(v: unknown): string {
  if (!isTable(v)) return 'toml: top-level values must be Go maps or structs';
  const lines: string[] = [];
  const table = (t: Record<string, unknown>, path: string[]): void => {
    const pad = '  '.repeat(path.length);
    const keys = Object.keys(t)
      .sort()
      .filter((k) => t[k] !== null && t[k] !== undefined);
    for (const k of keys) if (!isTable(t[k]) && !isTableArray(t[k])) lines.push(`${pad}${tomlKey(k)} = ${tomlValue(t[k])}`);
    for (const k of keys) {
      const sub = [...path, tomlKey(k)];
      const subPad = '  '.repeat(sub.length - 1);
      const child = t[k];
      if (isTable(child)) {
        if (sub.length === 1 && lines.length > 0) lines.push('');
        lines.push(`${subPad}[${sub.join('.')}]`);
        table(child, sub);
      } else if (isTableArray(child)) {
        for (const item of child) {
          if (sub.length === 1 && lines.length > 0) lines.push('');
          lines.push(`${subPad}[[${sub.join('.')}]]`);
          table(item, sub);
        }
      }
    }
  };
  table(v, []);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

// --- decoding

class TomlReader {
  i = 0;
  constructor(readonly s: string) {}
  fail(msg: string): never {
    const line = this.s.slice(0, this.i).split('\n').length;
    throw new Error(`toml: line ${line}: ${msg}`);
  }
  skipSpace(newlines = false): void {
    for (;;) {
      const c = this.s[this.i];
      if (c === ' ' || c === '\t' || (newlines && (c === '\n' || c === '\r'))) this.i++;
      else if (c === '#') while (this.i < this.s.length && this.s[this.i] !== '\n') this.i++;
      else return;
    }
  }
  key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipSpace();
      const c = this.s[this.i];
      if (c === '"' || c === "'") parts.push(this.string());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.s.slice(this.i));
        if (!m) this.fail('expected a key');
        parts.push(m[0]);
        this.i += m[0].length;
      }
      this.skipSpace();
      if (this.s[this.i] !== '.') return parts;
      this.i++;
    }
  }
  string(): string {
    const q = this.s[this.i]!;
    const multi = this.s.startsWith(q.repeat(3), this.i);
    const end = multi ? q.repeat(3) : q;
    this.i += end.length;
    if (multi && this.s[this.i] === '\n') this.i++;
    let out = '';
    for (;;) {
      if (this.i >= this.s.length) this.fail('unterminated string');
      if (this.s.startsWith(end, this.i)) {
        this.i += end.length;
        return out;
      }
      const c = this.s[this.i++]!;
      if (c === '\\' && q === '"') {
        const e = this.s[this.i++]!;
        const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };
        if (e in simple) out += simple[e];
        else if (e === 'u' || e === 'U') {
          const len = e === 'u' ? 4 : 8;
          out += String.fromCodePoint(Number.parseInt(this.s.slice(this.i, this.i + len), 16));
          this.i += len;
        } else if (multi && (e === '\n' || e === ' ' || e === '\t' || e === '\r')) {
          while (/[ \t\r\n]/.test(this.s[this.i] ?? '')) this.i++;
        } else this.fail(`invalid escape \\${e}`);
      } else if (c === '\n' && !multi) this.fail('newline in string');
      else out += c;
    }
  }
  value(): unknown {
    this.skipSpace();
    const c = this.s[this.i];
    if (c === '"' || c === "'") return this.string();
    if (c === '[') {
      this.i++;
      const out: unknown[] = [];
      for (;;) {
        this.skipSpace(true);
        if (this.s[this.i] === ']') {
          this.i++;
          return out;
        }
        out.push(this.value());
        this.skipSpace(true);
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== ']') this.fail('expected , or ] in an array');
      }
    }
    if (c === '{') {
      this.i++;
      const out: Record<string, unknown> = {};
      for (;;) {
        this.skipSpace();
        if (this.s[this.i] === '}') {
          this.i++;
          return out;
        }
        const k = this.key();
        if (this.s[this.i++] !== '=') this.fail('expected = in an inline table');
        setPath(out, k, this.value());
        this.skipSpace();
        if (this.s[this.i] === ',') this.i++;
      }
    }
    const m = /^[^\s,\]}#]+(?: [0-9:.+-Z]+)?/.exec(this.s.slice(this.i));
    if (!m) this.fail('expected a value');
    const word = m[0].trim();
    this.i += m[0].length;
    if (word === 'true' || word === 'false') return word === 'true';
    if (word === 'inf' || word === '+inf') return Number.POSITIVE_INFINITY;
    if (word === '-inf') return Number.NEGATIVE_INFINITY;
    if (/^[+-]?nan$/.test(word)) return Number.NaN;
    const plain = word.replaceAll('_', '');
    if (/^0x[0-9a-fA-F]+$/.test(plain)) return Number.parseInt(plain.slice(2), 16);
    if (/^0o[0-7]+$/.test(plain)) return Number.parseInt(plain.slice(2), 8);
    if (/^0b[01]+$/.test(plain)) return Number.parseInt(plain.slice(2), 2);
    if (/^[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/.test(plain)) return Number(plain);
    // dates and times stay their text
    if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}|^[0-9]{2}:[0-9]{2}/.test(word)) return word;
    this.fail(`invalid value ${word}`);
  }
}

function setPath(root: Record<string, unknown>, path: string[], value: unknown): void {
  let t = root;
  for (const k of path.slice(0, -1)) {
    if (!isMap(t[k])) put(t, k, {});
    t = t[k] as Record<string, unknown>;
  }
  put(t, path.at(-1)!, value);
}

/** fromToml: a TOML document as a map (throws on a syntax error). */
export function parseToml(text: string): Record<string, unknown> {
  const r = new TomlReader(text);
  const root: Record<string, unknown> = {};
  let table = root;
  for (;;) {
    r.skipSpace(true);
    if (r.i >= text.length) return root;
    if (text[r.i] === '[') {
      const array = text[r.i + 1] === '[';
      r.i += array ? 2 : 1;
      const path = r.key();
      if (!text.startsWith(array ? ']]' : ']', r.i)) r.fail('expected ] after a table name');
      r.i += array ? 2 : 1;
      let t = root;
      for (const [n, k] of path.entries()) {
        const last = n === path.length - 1;
        if (last && array) {
          if (!Array.isArray(t[k])) put(t, k, []);
          const item: Record<string, unknown> = {};
          (t[k] as unknown[]).push(item);
          t = item;
        } else {
          const cur = t[k];
          if (Array.isArray(cur)) t = cur.at(-1) as Record<string, unknown>;
          else {
            if (!isMap(cur)) put(t, k, {});
            t = t[k] as Record<string, unknown>;
          }
        }
      }
      table = t;
      continue;
    }
    const key = r.key();
    if (text[r.i] !== '=') r.fail('expected = after a key');
    r.i++;
    setPath(table, key, r.value());
    r.skipSpace();
    if (r.i < text.length && text[r.i] !== '\n' && text[r.i] !== '\r') r.fail('expected the end of the line');
  }
}
