/**
 * YAML text as Helm's toYaml writes it: sigs.k8s.io/yaml turns the value into JSON
 * and writes that with yaml.v2, whose emitter is libyaml's. Its choices are kept
 * here because charts embed toYaml output in strings (ConfigMap data), where
 * every quote and line break is content: keys sorted, sequences not indented
 * inside mappings, a string plain when yaml.v2 would read it back as the same
 * string, else single-quoted when that can hold it, else double-quoted; strings
 * with line breaks as literal blocks; plain and quoted scalars folded at spaces
 * past column 80.
 */

const BEST_WIDTH = 80;
const INDENT = 2;

// --- how yaml.v2 resolves a plain scalar (resolve.go): anything but a string must be quoted

const NON_STRINGS = new Set([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE'],
  ...['on', 'On', 'ON', 'off', 'Off', 'OFF', '', '~', 'null', 'Null', 'NULL', '<<'],
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF', '-.inf', '-.Inf', '-.INF', '.nan', '.NaN', '.NAN'],
]);
const GO_INT = /^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/;
const YAML_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const TIMESTAMP = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::?[0-9]{2})?))?)?$/;
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

/** Whether yaml.v2 may write the string plain: it would read back as the same string. */
function resolvesToString(s: string): boolean {
  if (NON_STRINGS.has(s)) return false;
  if ('-+0123456789.'.includes(s[0]!)) {
    const plain = s.replaceAll('_', '');
    if (GO_INT.test(plain) || YAML_FLOAT.test(plain) || TIMESTAMP.test(s)) return false;
  }
  return !BASE60_FLOAT.test(s);
}

// --- libyaml's scalar analysis (yaml_emitter_analyze_scalar)

const isBreak = (c: string | undefined) => c === '\r' || c === '\n' || c === '\u0085' || c === '\u2028' || c === '\u2029';
const isBlankOrEnd = (c: string | undefined) => c === undefined || c === ' ' || c === '\t' || isBreak(c);

function isPrintable(c: string): boolean {
  const n = c.codePointAt(0)!;
  return (
    n === 0x0a ||
    (n >= 0x20 && n <= 0x7e) ||
    n === 0x85 ||
    (n >= 0xa0 && n <= 0xd7ff) ||
    (n >= 0xe000 && n <= 0xfffd && n !== 0xfeff) ||
    (n >= 0x10000 && n <= 0x10ffff)
  );
}

interface Analysis {
  multiline: boolean;
  blockPlain: boolean;
  single: boolean;
  block: boolean;
}

function analyze(chars: string[]): Analysis {
  if (chars.length === 0) return { multiline: false, blockPlain: false, single: true, block: false };
  const s = chars.join('');
  let blockIndicators = s.startsWith('---') || s.startsWith('...');
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;
  let precededByWhitespace = true;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const first = i === 0;
    const last = i === chars.length - 1;
    const followedByWhitespace = isBlankOrEnd(chars[i + 1]);
    if (first) {
      if ('#,[]{}&*!|>\'"%@`'.includes(c)) blockIndicators = true;
      if ((c === '?' || c === ':' || c === '-') && followedByWhitespace) blockIndicators = true;
    } else {
      if (c === ':' && followedByWhitespace) blockIndicators = true;
      if (c === '#' && precededByWhitespace) blockIndicators = true;
    }
    if (!isPrintable(c)) special = true;
    if (isBreak(c)) lineBreaks = true;
    if (c === ' ') {
      if (first) leadingSpace = true;
      if (last) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      if (first) leadingBreak = true;
      if (last) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousBreak = true;
      previousSpace = false;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankOrEnd(c);
  }
  const a: Analysis = { multiline: lineBreaks, blockPlain: true, single: true, block: true };
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) a.blockPlain = false;
  if (trailingSpace) a.block = false;
  if (breakSpace) a.blockPlain = a.single = false;
  if (spaceBreak || special) a.blockPlain = a.single = a.block = false;
  if (lineBreaks || blockIndicators) a.blockPlain = false;
  return a;
}

// --- writing scalars

class Writer {
  out = '';
  column = 0;

  put(s: string): void {
    this.out += s;
    this.column += [...s].length;
  }
  newline(indent: number): void {
    this.out += `\n${' '.repeat(indent)}`;
    this.column = indent;
  }
}

type Style = 'plain' | 'single' | 'double' | 'literal';

function styleOf(s: string, chars: string[], key: boolean): Style {
  const a = analyze(chars);
  // yaml.v2 asks for a literal block when there is a line break, plain when the string resolves to itself, else double quotes
  let style: Style = s.includes('\n') ? 'literal' : resolvesToString(s) ? 'plain' : 'double';
  if (key && a.multiline) style = 'double';
  if (style === 'plain' && (!a.blockPlain || (chars.length === 0 && key))) style = 'single';
  if (style === 'single' && !a.single) style = 'double';
  if (style === 'literal' && (!a.block || key)) style = 'double';
  return style;
}

const ESCAPES: Record<string, string> = {
  '\0': '0',
  '\u0007': 'a',
  '\b': 'b',
  '\t': 't',
  '\n': 'n',
  '\u000b': 'v',
  '\f': 'f',
  '\r': 'r',
  '\u001b': 'e',
  '"': '"',
  '\\': '\\',
  '\u0085': 'N',
  '\u00a0': '_',
  '\u2028': 'L',
  '\u2029': 'P',
};

function writePlain(w: Writer, chars: string[], indent: number, breaks: boolean): void {
  let spaces = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ' ') {
      if (breaks && !spaces && w.column > BEST_WIDTH && chars[i + 1] !== ' ') w.newline(indent);
      else w.put(c);
      spaces = true;
    } else {
      w.put(c);
      spaces = false;
    }
  }
}

function writeSingle(w: Writer, chars: string[], indent: number, breaks: boolean): void {
  w.put("'");
  let spaces = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ' ') {
      if (breaks && !spaces && w.column > BEST_WIDTH && i !== 0 && i !== chars.length - 1 && chars[i + 1] !== ' ') w.newline(indent);
      else w.put(c);
      spaces = true;
    } else {
      w.put(c === "'" ? "''" : c);
      spaces = false;
    }
  }
  w.put("'");
}

function writeDouble(w: Writer, chars: string[], indent: number, breaks: boolean): void {
  w.put('"');
  let spaces = false;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const n = c.codePointAt(0)!;
    if (!isPrintable(c) || n === 0xfeff || isBreak(c) || c === '"' || c === '\\') {
      const e = ESCAPES[c];
      if (e !== undefined) w.put(`\\${e}`);
      else if (n <= 0xff) w.put(`\\x${n.toString(16).toUpperCase().padStart(2, '0')}`);
      else if (n <= 0xffff) w.put(`\\u${n.toString(16).toUpperCase().padStart(4, '0')}`);
      else w.put(`\\U${n.toString(16).toUpperCase().padStart(8, '0')}`);
      spaces = false;
    } else if (c === ' ') {
      if (breaks && !spaces && w.column > BEST_WIDTH && i !== 0 && i !== chars.length - 1) {
        w.newline(indent);
        if (chars[i + 1] === ' ') w.put('\\');
      } else w.put(c);
      spaces = true;
    } else {
      w.put(c);
      spaces = false;
    }
  }
  w.put('"');
}

function writeLiteral(w: Writer, s: string, indent: number): void {
  let hints = '';
  if (s.startsWith(' ') || isBreak(s[0])) hints += String(INDENT);
  if (!isBreak(s.at(-1))) hints += '-';
  else if (s.length === 1 || isBreak(s.at(-2))) hints += '+';
  w.put(`|${hints}`);
  const lines = s.split('\n');
  if (s.endsWith('\n')) lines.pop();
  for (const line of lines) {
    if (line === '') {
      w.out += '\n';
      w.column = 0;
    } else {
      w.newline(indent);
      w.put(line);
    }
  }
}

/** A string scalar at the writer's position; `indent` is where continuation lines start. */
function writeString(w: Writer, s: string, indent: number, key: boolean): void {
  const chars = [...s];
  const style = styleOf(s, chars, key);
  if (style === 'plain') writePlain(w, chars, indent, !key);
  else if (style === 'single') writeSingle(w, chars, indent, !key);
  else if (style === 'double') writeDouble(w, chars, indent, !key);
  else writeLiteral(w, s, indent);
}

/** A float as yaml.v2 writes one read from JSON: integers in full, others as Go's strconv 'g' (shortest). */
function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? '.nan' : n > 0 ? '+.inf' : '-.inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  const [mantissa, e] = n.toExponential().split('e') as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= (Number.isInteger(n) ? 21 : 6)) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function isScalar(v: unknown): boolean {
  return v === null || typeof v !== 'object' || (Array.isArray(v) ? v.length === 0 : Object.keys(v as object).length === 0);
}

function writeScalar(w: Writer, v: unknown, indent: number): void {
  if (v === null || v === undefined) w.put('null');
  else if (typeof v === 'string') writeString(w, v, indent, false);
  else if (typeof v === 'number') w.put(formatNumber(v));
  else if (typeof v === 'boolean') w.put(v ? 'true' : 'false');
  else if (Array.isArray(v)) w.put('[]');
  else w.put('{}');
}

const isLetter = (c: string) => /\p{L}/u.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

/** yaml.v2's order of string keys (sorter.go): runs of digits compare as numbers, other characters before letters. */
export function keyOrder(a: string, b: string): number {
  const ar = [...a];
  const br = [...b];
  for (let i = 0; i < ar.length && i < br.length; i++) {
    const x = ar[i]!;
    const y = br[i]!;
    if (x === y) continue;
    const xl = isLetter(x);
    const yl = isLetter(y);
    if (xl && yl) return x < y ? -1 : 1;
    if (xl || yl) return yl ? -1 : 1;
    let an = 0;
    let bn = 0;
    if (x === '0' || y === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]); j--) {
        if (ar[j] !== '0') {
          an = 1;
          bn = 1;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; isDigit(ar[ai]); ai++) an = an * 10 + Number(ar[ai]);
    for (; isDigit(br[bi]); bi++) bn = bn * 10 + Number(br[bi]);
    if (an !== bn) return an < bn ? -1 : 1;
    if (ai !== bi) return ai < bi ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return ar.length - br.length;
}

/** A block node starting at the writer's position (after `- ` or at a line start) at column `indent`. */
function writeNode(w: Writer, v: unknown, indent: number, seqIndent = 0): void {
  if (isScalar(v)) {
    writeScalar(w, v, indent);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      if (i > 0) w.newline(indent);
      w.put('- ');
      writeNode(w, item, indent + INDENT, seqIndent);
    });
    return;
  }
  const o = v as Record<string, unknown>;
  Object.keys(o)
    .sort(keyOrder)
    .forEach((k, i) => {
      if (i > 0) w.newline(indent);
      writeString(w, k, indent, true);
      w.put(':');
      const child = o[k];
      if (isScalar(child)) {
        w.put(' ');
        writeScalar(w, child, indent + INDENT);
      } else if (Array.isArray(child)) {
        // yaml.v2 does not indent a sequence inside a mapping (yaml.v3 with SetIndent(2), toYamlPretty, does)
        w.newline(indent + seqIndent);
        writeNode(w, child, indent + seqIndent, seqIndent);
      } else {
        w.newline(indent + INDENT);
        writeNode(w, child, indent + INDENT, seqIndent);
      }
    });
}

/** The YAML document yaml.v2 writes for a JSON-like value, with its final newline (`indentSequences`: as yaml.v3 with SetIndent(2)). */
export function emitYaml(v: unknown, indentSequences = false): string {
  const w = new Writer();
  // a lone scalar's continuation lines are indented, as libyaml indents a root block scalar
  if (isScalar(v)) writeScalar(w, v, INDENT);
  else writeNode(w, v, 0, indentSequences ? INDENT : 0);
  return `${w.out}\n`;
}
