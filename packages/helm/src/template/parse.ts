/**
 * A parser for Go's text/template language, the language of Helm templates:
 * text and `{{ actions }}` with trim markers (`{{-`, `-}}`), comments, pipelines,
 * variables, `if`/`else if`/`with`/`else with`/`range`/`define`/`template`/`block`,
 * `break` and `continue`. The evaluator is in exec.ts.
 */

export interface Pos {
  /** The template name (a chart file path, or the caller's file for `tpl`). */
  file: string;
  /** 1-based line of the node in its file. */
  line: number;
}

export type Operand =
  | { type: 'dot'; chain: string[] }
  | { type: 'field'; chain: string[] }
  | { type: 'var'; name: string; chain: string[] }
  | { type: 'ident'; name: string }
  | { type: 'string'; value: string }
  | { type: 'number'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'nil' }
  | { type: 'pipe'; pipe: Pipeline; chain: string[] };

export interface Command {
  args: Operand[];
}

export interface Pipeline {
  /** Declared (`:=`) or assigned (`=`) variables, with the `$`. */
  decl: string[];
  isAssign: boolean;
  cmds: Command[];
}

export type Node =
  | { type: 'text'; text: string; pos: Pos }
  | { type: 'action'; pipe: Pipeline; pos: Pos }
  | { type: 'if' | 'with' | 'range'; pipe: Pipeline; list: Node[]; elseList: Node[] | undefined; pos: Pos }
  | { type: 'template'; name: string; pipe: Pipeline | undefined; pos: Pos }
  | { type: 'break' | 'continue'; pos: Pos };

export interface ParsedTemplate {
  /** The nodes of the file itself (outside any define). */
  root: Node[];
  /** `define`d (and `block`) templates, in the order they appear. */
  defines: Array<{ name: string; nodes: Node[] }>;
}

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly pos: Pos,
  ) {
    super(`${pos.file}:${pos.line}: ${message}`);
  }
}

// ---------------------------------------------------------------------------
// Lexing: the text is cut into text items and action items (token lists).

type Tok =
  | { t: 'field'; v: string; sp: boolean } // ".Name"
  | { t: 'dot'; sp: boolean } // "."
  | { t: 'var'; v: string; sp: boolean } // "$x" or "$"
  | { t: 'ident'; v: string; sp: boolean }
  | { t: 'string'; v: string; sp: boolean }
  | { t: 'number'; v: number; sp: boolean }
  | { t: 'pipe' | 'lparen' | 'rparen' | 'declare' | 'assign' | 'comma'; sp: boolean };

type Item = { kind: 'text'; text: string; line: number } | { kind: 'action'; toks: Tok[]; line: number };

const SPACE = /[ \t\r\n]/;

function isAlnum(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9_]/.test(c);
}

function countLines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

function unquoteGo(raw: string, pos: Pos): string {
  // raw includes the quotes
  let out = '';
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = raw[++i];
    switch (n) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case "'":
        out += "'";
        break;
      case 'x':
        out += String.fromCharCode(parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
        break;
      case 'u':
        out += String.fromCodePoint(parseInt(raw.slice(i + 1, i + 5), 16));
        i += 4;
        break;
      case 'U':
        out += String.fromCodePoint(parseInt(raw.slice(i + 1, i + 9), 16));
        i += 8;
        break;
      default:
        if (n !== undefined && /[0-7]/.test(n)) {
          out += String.fromCharCode(parseInt(raw.slice(i, i + 3), 8));
          i += 2;
        } else {
          throw new TemplateSyntaxError(`unknown escape sequence \\${n ?? ''}`, pos);
        }
    }
  }
  return out;
}

function lex(src: string, file: string): Item[] {
  const items: Item[] = [];
  let i = 0;
  let line = 1;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    const textLine = line;
    line += countLines(src, i, open < 0 ? src.length : open);
    if (open < 0) {
      if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
      if (text !== '') items.push({ kind: 'text', text, line: textLine });
      break;
    }
    // left trim marker "{{- "
    let p = open + 2;
    const leftTrim = src[p] === '-' && SPACE.test(src[p + 1] ?? '');
    let startLine = textLine;
    if (trimNext) {
      const trimmed = text.replace(/^[ \t\r\n]+/, '');
      startLine += countLines(text, 0, text.length - trimmed.length);
      text = trimmed;
    }
    if (leftTrim) {
      text = text.replace(/[ \t\r\n]+$/, '');
      p += 2;
    }
    if (text !== '') items.push({ kind: 'text', text, line: startLine });
    const actionLine = line;
    const pos: Pos = { file, line: actionLine };
    // comment
    let q = p;
    while (SPACE.test(src[q] ?? '') && leftTrim) q++;
    if (src.startsWith('/*', q)) {
      const end = src.indexOf('*/', q + 2);
      if (end < 0) throw new TemplateSyntaxError('unclosed comment', pos);
      let r = end + 2;
      let rightTrim = false;
      const m = /^[ \t\r\n]+-}}/.exec(src.slice(r, r + 200));
      if (m) {
        rightTrim = true;
        r += m[0].length;
      } else if (src.startsWith('}}', r)) {
        r += 2;
      } else {
        throw new TemplateSyntaxError('comment ends before closing delimiter', pos);
      }
      line += countLines(src, open, r);
      i = r;
      trimNext = rightTrim;
      continue;
    }
    // tokens until "}}" or " -}}"
    const toks: Tok[] = [];
    let sp = true;
    let rightTrim = false;
    q = p;
    for (;;) {
      const c = src[q];
      if (c === undefined) throw new TemplateSyntaxError('unclosed action', pos);
      if (SPACE.test(c)) {
        // " -}}" is the right trim marker
        let r = q;
        while (SPACE.test(src[r] ?? '')) r++;
        if (src.startsWith('-}}', r)) {
          rightTrim = true;
          q = r + 3;
          break;
        }
        q = r;
        sp = true;
        continue;
      }
      if (src.startsWith('}}', q)) {
        q += 2;
        break;
      }
      const start = q;
      if (c === '"') {
        q++;
        while (q < src.length && src[q] !== '"') {
          if (src[q] === '\\') q++;
          if (src[q] === '\n') throw new TemplateSyntaxError('unterminated quoted string', pos);
          q++;
        }
        q++;
        toks.push({ t: 'string', v: unquoteGo(src.slice(start, q), pos), sp });
      } else if (c === '`') {
        const end = src.indexOf('`', q + 1);
        if (end < 0) throw new TemplateSyntaxError('unterminated raw quoted string', pos);
        toks.push({ t: 'string', v: src.slice(q + 1, end), sp });
        q = end + 1;
      } else if (c === "'") {
        q++;
        while (q < src.length && src[q] !== "'") {
          if (src[q] === '\\') q++;
          q++;
        }
        q++;
        const s = unquoteGo(`"${src.slice(start + 1, q - 1)}"`, pos);
        toks.push({ t: 'number', v: s.codePointAt(0) ?? 0, sp });
      } else if (c === '$') {
        q++;
        while (isAlnum(src[q])) q++;
        toks.push({ t: 'var', v: src.slice(start, q), sp });
      } else if (c === '.' && isAlnum(src[q + 1]) && !/[0-9]/.test(src[q + 1]!)) {
        q++;
        while (isAlnum(src[q])) q++;
        toks.push({ t: 'field', v: src.slice(start + 1, q), sp });
      } else if (c === '.' && !/[0-9]/.test(src[q + 1] ?? '')) {
        q++;
        toks.push({ t: 'dot', sp });
      } else if (/[0-9]/.test(c) || ((c === '-' || c === '+' || c === '.') && /[0-9.]/.test(src[q + 1] ?? ''))) {
        q++;
        while (/[0-9A-Za-z_.+-]/.test(src[q] ?? '')) {
          // a "-" or "+" only after an exponent marker
          if ((src[q] === '-' || src[q] === '+') && !/[eEpP]/.test(src[q - 1] ?? '')) break;
          q++;
        }
        const raw = src.slice(start, q).replace(/_/g, '');
        let v: number;
        if (/^[+-]?0[xX]/.test(raw)) v = parseInt(raw, 16);
        else if (/^[+-]?0[bB]/.test(raw)) v = parseInt(raw.replace(/0[bB]/, ''), 2);
        else if (/^[+-]?0[oO]/.test(raw)) v = parseInt(raw.replace(/0[oO]/, ''), 8);
        else if (/^[+-]?0[0-7]+$/.test(raw)) v = parseInt(raw, 8);
        else v = Number(raw);
        if (Number.isNaN(v)) throw new TemplateSyntaxError(`bad number syntax: "${raw}"`, pos);
        toks.push({ t: 'number', v, sp });
      } else if (isAlnum(c)) {
        while (isAlnum(src[q])) q++;
        toks.push({ t: 'ident', v: src.slice(start, q), sp });
      } else if (c === '|') {
        q++;
        toks.push({ t: 'pipe', sp });
      } else if (c === '(') {
        q++;
        toks.push({ t: 'lparen', sp });
      } else if (c === ')') {
        q++;
        toks.push({ t: 'rparen', sp });
      } else if (c === ',') {
        q++;
        toks.push({ t: 'comma', sp });
      } else if (c === ':' && src[q + 1] === '=') {
        q += 2;
        toks.push({ t: 'declare', sp });
      } else if (c === '=') {
        q++;
        toks.push({ t: 'assign', sp });
      } else {
        throw new TemplateSyntaxError(`unexpected "${c}" in action`, pos);
      }
      sp = false;
    }
    line += countLines(src, open, q);
    items.push({ kind: 'action', toks, line: actionLine });
    i = q;
    trimNext = rightTrim;
  }
  return items;
}

// ---------------------------------------------------------------------------
// Parsing

class PipeParser {
  private i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly pos: Pos,
  ) {}

  peek(): Tok | undefined {
    return this.toks[this.i];
  }
  next(): Tok | undefined {
    return this.toks[this.i++];
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }
  fail(msg: string): never {
    throw new TemplateSyntaxError(msg, this.pos);
  }

  /** pipeline := [decl] command ('|' command)* ; stops at ')' or end. */
  pipeline(allowDecl: boolean, rangeDecl = false): Pipeline {
    const decl: string[] = [];
    let isAssign = false;
    if (allowDecl) {
      // lookahead for "$x :=", "$x =", "$i, $v :="
      const save = this.i;
      const a = this.toks[this.i];
      const b = this.toks[this.i + 1];
      if (a?.t === 'var' && (b?.t === 'declare' || b?.t === 'assign')) {
        decl.push(a.v);
        isAssign = b.t === 'assign';
        this.i += 2;
      } else if (rangeDecl && a?.t === 'var' && b?.t === 'comma') {
        const c = this.toks[this.i + 2];
        const d = this.toks[this.i + 3];
        if (c?.t === 'var' && (d?.t === 'declare' || d?.t === 'assign')) {
          decl.push(a.v, c.v);
          isAssign = d.t === 'assign';
          this.i += 4;
        } else {
          this.i = save;
        }
      }
    }
    const cmds: Command[] = [];
    for (;;) {
      cmds.push(this.command());
      const t = this.peek();
      if (t?.t === 'pipe') {
        this.next();
        // Go's parser ends a pipeline at its closing delimiter even right after a '|': `{{ x | f | }}` is `{{ x | f }}`
        const after = this.peek();
        if (!after || after.t === 'rparen') break;
        continue;
      }
      break;
    }
    return { decl, isAssign, cmds };
  }

  command(): Command {
    const args: Operand[] = [];
    for (;;) {
      const t = this.peek();
      if (!t || t.t === 'pipe' || t.t === 'rparen') break;
      args.push(this.operand());
    }
    if (args.length === 0) this.fail(this.peek()?.t === 'pipe' ? 'unexpected "|" in command' : 'missing value for command');
    return { args };
  }

  chain(): string[] {
    const chain: string[] = [];
    for (;;) {
      const t = this.peek();
      if (t?.t === 'field' && !t.sp) {
        chain.push(t.v);
        this.next();
      } else break;
    }
    return chain;
  }

  operand(): Operand {
    const t = this.next();
    if (!t) this.fail('unexpected end of action');
    switch (t.t) {
      case 'dot':
        return { type: 'dot', chain: this.chain() };
      case 'field':
        return { type: 'field', chain: [t.v, ...this.chain()] };
      case 'var':
        return { type: 'var', name: t.v, chain: this.chain() };
      case 'string':
        return { type: 'string', value: t.v };
      case 'number':
        return { type: 'number', value: t.v };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { type: 'bool', value: t.v === 'true' };
        if (t.v === 'nil') return { type: 'nil' };
        return { type: 'ident', name: t.v };
      case 'lparen': {
        const pipe = this.pipeline(true);
        if (this.next()?.t !== 'rparen') this.fail('unclosed left paren');
        return { type: 'pipe', pipe, chain: this.chain() };
      }
      default:
        this.fail(`unexpected token in operand`);
    }
  }
}

type Terminator = 'end' | 'else' | 'eof';

class Parser {
  private i = 0;
  readonly defines: Array<{ name: string; nodes: Node[] }> = [];
  constructor(
    private readonly items: Item[],
    private readonly file: string,
  ) {}

  /** Parses nodes until `{{ end }}`, `{{ else ... }}` or the end of input. */
  list(): { nodes: Node[]; term: Terminator; elseToks?: Tok[]; termPos: Pos } {
    const nodes: Node[] = [];
    while (this.i < this.items.length) {
      const item = this.items[this.i++]!;
      const pos: Pos = { file: this.file, line: item.line };
      if (item.kind === 'text') {
        nodes.push({ type: 'text', text: item.text, pos });
        continue;
      }
      const toks = item.toks;
      const first = toks[0];
      if (!first) throw new TemplateSyntaxError('missing value for command', pos);
      const kw = first.t === 'ident' ? first.v : undefined;
      const rest = toks.slice(1);
      switch (kw) {
        case 'end':
          return { nodes, term: 'end', termPos: pos };
        case 'else':
          return { nodes, term: 'else', elseToks: rest, termPos: pos };
        case 'if':
        case 'with':
        case 'range':
          nodes.push(this.control(kw, rest, pos));
          break;
        case 'define': {
          const p = new PipeParser(rest, pos);
          const name = p.next();
          if (name?.t !== 'string' || !p.done()) throw new TemplateSyntaxError('define needs a quoted name', pos);
          const body = this.list();
          if (body.term !== 'end') throw new TemplateSyntaxError(`unexpected ${body.term} in define`, pos);
          this.defines.push({ name: name.v, nodes: body.nodes });
          break;
        }
        case 'block': {
          const p = new PipeParser(rest, pos);
          const name = p.next();
          if (name?.t !== 'string') throw new TemplateSyntaxError('block needs a quoted name', pos);
          const pipe = p.done() ? undefined : p.pipeline(false);
          const body = this.list();
          if (body.term !== 'end') throw new TemplateSyntaxError(`unexpected ${body.term} in block`, pos);
          this.defines.push({ name: name.v, nodes: body.nodes });
          nodes.push({ type: 'template', name: name.v, pipe, pos });
          break;
        }
        case 'template': {
          const p = new PipeParser(rest, pos);
          const name = p.next();
          if (name?.t !== 'string') throw new TemplateSyntaxError('template needs a quoted name', pos);
          const pipe = p.done() ? undefined : p.pipeline(false);
          if (!p.done()) throw new TemplateSyntaxError('unexpected input after template', pos);
          nodes.push({ type: 'template', name: name.v, pipe, pos });
          break;
        }
        case 'break':
        case 'continue':
          nodes.push({ type: kw, pos });
          break;
        default: {
          const p = new PipeParser(toks, pos);
          const pipe = p.pipeline(true);
          if (!p.done()) throw new TemplateSyntaxError('unexpected ")" or input in action', pos);
          nodes.push({ type: 'action', pipe, pos });
        }
      }
    }
    return { nodes, term: 'eof', termPos: { file: this.file, line: this.items.at(-1)?.line ?? 1 } };
  }

  control(kw: 'if' | 'with' | 'range', toks: Tok[], pos: Pos): Node {
    const p = new PipeParser(toks, pos);
    const pipe = p.pipeline(true, kw === 'range');
    if (!p.done()) throw new TemplateSyntaxError(`unexpected input in ${kw}`, pos);
    const body = this.list();
    if (body.term === 'eof') throw new TemplateSyntaxError(`unexpected EOF: ${kw} without end`, pos);
    let elseList: Node[] | undefined;
    if (body.term === 'else') {
      const et = body.elseToks ?? [];
      const first = et[0];
      if (first?.t === 'ident' && (first.v === 'if' || first.v === 'with') && kw !== 'range') {
        // "else if" / "else with": a nested control that shares our end
        elseList = [this.control(first.v, et.slice(1), body.termPos)];
        return { type: kw, pipe, list: body.nodes, elseList, pos };
      }
      if (et.length > 0) throw new TemplateSyntaxError('unexpected input after else', body.termPos);
      const e = this.list();
      if (e.term !== 'end') throw new TemplateSyntaxError(`expected end after else in ${kw}`, body.termPos);
      elseList = e.nodes;
    }
    return { type: kw, pipe, list: body.nodes, elseList, pos };
  }
}

/** Parses one template file. Throws TemplateSyntaxError. */
export function parseTemplate(src: string, file: string): ParsedTemplate {
  const parser = new Parser(lex(src, file), file);
  const top = parser.list();
  if (top.term !== 'eof') throw new TemplateSyntaxError(`unexpected {{${top.term}}}`, top.termPos);
  return { root: top.nodes, defines: parser.defines };
}

/** Whether a parsed body is only whitespace text (Go does not let such a define replace another). */
export function isEmptyTree(nodes: Node[]): boolean {
  return nodes.every((n) => n.type === 'text' && n.text.trim() === '');
}
