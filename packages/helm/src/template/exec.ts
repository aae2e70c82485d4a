/**
 * Executes parsed Go templates (parse.ts) the way text/template does,
 * with Helm's conventions: `missingkey=zero`, `<no value>` for nil in output.
 * It is lenient where Go would stop with an error on a nil receiver (`.a.b` with
 * `a` missing gives nil), because discovery wants as much output as possible.
 *
 * The output keeps a source map: for every chunk, the template file and line
 * that emitted it, so an image found in the output can name its template line.
 */
import { type Command, isEmptyTree, type Node, type Operand, type Pipeline, type Pos, parseTemplate } from './parse.js';

export class TemplateExecError extends Error {
  constructor(
    message: string,
    readonly pos: Pos | undefined,
  ) {
    super(pos ? `${pos.file}:${pos.line}: ${message}` : message);
  }
}

/** A function callable from templates. `this` is unused; arguments are evaluated values. */
// biome-ignore lint/suspicious/noExplicitAny: template functions take whatever the template passes
export type TemplateFunc = (...args: any[]) => unknown;

/** Functions whose arguments are evaluated lazily (Go's and/or short-circuit). */
const LAZY = new Set(['and', 'or']);
/** The functions the executor evaluates itself (short-circuit, or needing the template set), not in the function map. */
export const EXECUTOR_FUNCS: readonly string[] = ['and', 'or', 'include', 'tpl'];

// ---------------------------------------------------------------------------
// Values

/** A map in template terms: a plain object (not an array, not a class instance). */
export function isMap(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function hasOwn(o: object, k: string): boolean {
  return Object.hasOwn(o, k);
}

/** Sets a key as an own property: a `__proto__` key (legal in YAML) must not change the prototype. */
export function put(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** Go's truth: false, 0, nil, and empty strings, slices and maps are false. */
export function truth(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** Go's %v of a float64 (strconv 'g', shortest), integers printed plainly. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= 21) {
    const [m, e] = n.toExponential().split('e');
    const ev = Number(e);
    return `${m}e${ev < 0 ? '-' : '+'}${String(Math.abs(ev)).padStart(2, '0')}`;
  }
  return String(n);
}

/** Objects that print specially (e.g. .Capabilities.KubeVersion). */
export interface GoStringer {
  goString(): string;
}

/** Objects that `range` iterates like a map (e.g. `.Files.Glob`). */
export interface Rangeable {
  rangeEntries(): Array<[unknown, unknown]>;
}

function isRangeable(v: unknown): v is Rangeable {
  return typeof v === 'object' && v !== null && typeof (v as Rangeable).rangeEntries === 'function';
}

function isStringer(v: unknown): v is GoStringer {
  return typeof v === 'object' && v !== null && typeof (v as GoStringer).goString === 'function';
}

/** fmt's %v. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(' ')}]`;
  if (isStringer(v)) return v.goString();
  if (isMap(v)) {
    return (
      'map[' +
      Object.keys(v)
        .sort()
        .map((k) => `${k}:${fmtValue(v[k])}`)
        .join(' ') +
      ']'
    );
  }
  if (typeof v === 'function') return '<func>';
  return String(v);
}

/** What an action prints. */
export function printValue(v: unknown): string {
  // Go prints "<no value>", which Helm removes from the output afterwards.
  if (v === null || v === undefined) return '';
  return fmtValue(v);
}

// ---------------------------------------------------------------------------
// Output with a source map

export interface Segment {
  offset: number;
  file: string;
  line: number;
  /** Text copied from the template: lines inside it follow the source. */
  verbatim: boolean;
}

export class Output {
  private parts: string[] = [];
  private length = 0;
  readonly segments: Segment[] = [];

  write(text: string, pos: Pos | undefined, verbatim: boolean): void {
    if (text === '') return;
    if (pos) this.segments.push({ offset: this.length, file: pos.file, line: pos.line, verbatim });
    this.parts.push(text);
    this.length += text.length;
  }

  toString(): string {
    const s = this.parts.join('');
    this.parts = [s];
    return s;
  }
}

/** The template file and line that produced `offset` of an output. */
export function sourceAt(text: string, segments: readonly Segment[], offset: number): { file: string; line: number } | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  let found: Segment | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid]!;
    if (s.offset <= offset) {
      found = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (!found) return undefined;
  let line = found.line;
  if (found.verbatim) {
    for (let i = found.offset; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  }
  return { file: found.file, line };
}

// ---------------------------------------------------------------------------
// Execution

type Flow = 'break' | 'continue' | undefined;

interface State {
  vars: Array<[string, unknown]>;
  out: Output;
  depth: number;
}

const MAX_DEPTH = 1000;

export class TemplateSet {
  private readonly named = new Map<string, Node[]>();
  private readonly tplCache = new Map<string, ReturnType<typeof parseTemplate>>();
  funcs: Record<string, TemplateFunc> = {};
  /** Names of functions called that do not exist (reported once by the caller). */
  readonly unknownFuncs = new Set<string>();

  /** Parses a file and registers it under `name` with its defines. Defines override earlier ones unless empty. */
  addFile(name: string, src: string): void {
    const parsed = parseTemplate(src, name);
    this.named.set(name, parsed.root);
    for (const d of parsed.defines) this.define(d.name, d.nodes);
  }

  define(name: string, nodes: Node[]): void {
    if (this.named.has(name) && isEmptyTree(nodes)) return;
    this.named.set(name, nodes);
  }

  has(name: string): boolean {
    return this.named.has(name);
  }

  /** Executes a named template; returns its output and source map. */
  execute(name: string, data: unknown, depth = 0): { text: string; segments: Segment[] } {
    const nodes = this.named.get(name);
    if (!nodes) throw new TemplateExecError(`no template "${name}" associated with template`, undefined);
    const out = new Output();
    this.run(nodes, data, { vars: [['$', data]], out, depth });
    return { text: out.toString(), segments: out.segments };
  }

  /** `include NAME DATA`: a named template's output as a string. */
  include(name: string, data: unknown, depth: number): string {
    if (depth > MAX_DEPTH) throw new TemplateExecError(`rendering template has a nested reference name: ${name}`, undefined);
    const nodes = this.named.get(name);
    if (!nodes) throw new TemplateExecError(`no template "${name}" associated with template`, undefined);
    const out = new Output();
    this.run(nodes, data, { vars: [['$', data]], out, depth: depth + 1 });
    return out.toString();
  }

  /** `tpl STRING DATA`: parses and runs a template string (its defines visible only inside). */
  tpl(src: string, data: unknown, depth: number, at: Pos | undefined): string {
    let parsed = this.tplCache.get(src);
    if (!parsed) {
      parsed = parseTemplate(src, at?.file ?? 'tpl');
      this.tplCache.set(src, parsed);
    }
    const saved: Array<[string, Node[] | undefined]> = [];
    for (const d of parsed.defines) {
      saved.push([d.name, this.named.get(d.name)]);
      this.named.set(d.name, d.nodes);
    }
    try {
      const out = new Output();
      this.run(parsed.root, data, { vars: [['$', data]], out, depth: depth + 1 });
      return out.toString().replaceAll('<no value>', '');
    } finally {
      for (const [n, old] of saved.reverse()) {
        if (old) this.named.set(n, old);
        else this.named.delete(n);
      }
    }
  }

  private run(nodes: Node[], dot: unknown, st: State): Flow {
    for (const node of nodes) {
      const flow = this.node(node, dot, st);
      if (flow) return flow;
    }
    return undefined;
  }

  private node(node: Node, dot: unknown, st: State): Flow {
    switch (node.type) {
      case 'text':
        st.out.write(node.text, node.pos, true);
        return undefined;
      case 'action': {
        const v = this.pipeline(node.pipe, dot, st, node.pos);
        if (node.pipe.decl.length === 0) st.out.write(printValue(v), node.pos, false);
        return undefined;
      }
      case 'if':
      case 'with': {
        const mark = st.vars.length;
        try {
          const v = this.pipeline(node.pipe, dot, st, node.pos);
          if (truth(v)) return this.run(node.list, node.type === 'with' ? v : dot, st);
          if (node.elseList) return this.run(node.elseList, dot, st);
          return undefined;
        } finally {
          st.vars.length = mark;
        }
      }
      case 'range':
        return this.range(node, dot, st);
      case 'template': {
        const data = node.pipe ? this.pipeline(node.pipe, dot, st, node.pos) : undefined;
        const nodes = this.named.get(node.name);
        if (!nodes) throw new TemplateExecError(`no template "${node.name}" associated with template`, node.pos);
        if (st.depth > MAX_DEPTH) throw new TemplateExecError(`exceeded maximum template depth`, node.pos);
        this.run(nodes, data, { vars: [['$', data]], out: st.out, depth: st.depth + 1 });
        return undefined;
      }
      case 'break':
      case 'continue':
        return node.type;
    }
  }

  private range(node: Extract<Node, { type: 'if' | 'with' | 'range' }>, dot: unknown, st: State): Flow {
    const mark = st.vars.length;
    const pipe: Pipeline = { ...node.pipe, decl: [] };
    const v = this.pipeline(pipe, dot, st, node.pos);
    const decl = node.pipe.decl;
    const entries: Array<[unknown, unknown]> = [];
    if (Array.isArray(v)) for (const [i, x] of v.entries()) entries.push([i, x]);
    else if (isMap(v)) for (const k of Object.keys(v).sort()) entries.push([k, v[k]]);
    else if (typeof v === 'number' && Number.isInteger(v)) for (let i = 0; i < v; i++) entries.push([i, i]);
    else if (isRangeable(v)) entries.push(...v.rangeEntries());
    else if (v !== null && v !== undefined && !(typeof v === 'number')) {
      throw new TemplateExecError(`range can't iterate over ${fmtValue(v)}`, node.pos);
    }
    try {
      if (entries.length === 0) {
        if (node.elseList) return this.run(node.elseList, dot, st);
        return undefined;
      }
      for (const [k, x] of entries) {
        const inner = st.vars.length;
        if (decl.length === 1) this.setVar(st, decl[0]!, x, node.pipe.isAssign);
        else if (decl.length === 2) {
          this.setVar(st, decl[0]!, k, node.pipe.isAssign);
          this.setVar(st, decl[1]!, x, node.pipe.isAssign);
        }
        const flow = this.run(node.list, x, st);
        st.vars.length = inner;
        if (flow === 'break') break;
      }
      return undefined;
    } finally {
      st.vars.length = mark;
    }
  }

  private setVar(st: State, name: string, value: unknown, assign: boolean): void {
    if (assign) {
      for (let i = st.vars.length - 1; i >= 0; i--) {
        if (st.vars[i]![0] === name) {
          st.vars[i]![1] = value;
          return;
        }
      }
      throw new TemplateExecError(`undefined variable: ${name}`, undefined);
    }
    st.vars.push([name, value]);
  }

  private lookupVar(st: State, name: string, pos: Pos): unknown {
    for (let i = st.vars.length - 1; i >= 0; i--) if (st.vars[i]![0] === name) return st.vars[i]![1];
    throw new TemplateExecError(`undefined variable: ${name}`, pos);
  }

  pipeline(pipe: Pipeline, dot: unknown, st: State, pos: Pos): unknown {
    let v: unknown;
    let first = true;
    for (const cmd of pipe.cmds) {
      v = this.command(cmd, dot, st, pos, first ? undefined : { value: v });
      first = false;
    }
    for (const name of pipe.decl) this.setVar(st, name, v, pipe.isAssign);
    return v;
  }

  private command(cmd: Command, dot: unknown, st: State, pos: Pos, piped: { value: unknown } | undefined): unknown {
    const head = cmd.args[0]!;
    const rest = cmd.args.slice(1);
    if (head.type === 'ident') {
      return this.call(head.name, rest, dot, st, pos, piped);
    }
    if ((head.type === 'field' || head.type === 'var' || head.type === 'dot' || head.type === 'pipe') && (rest.length > 0 || piped)) {
      // a method call: .Files.Get "x", $.Capabilities.APIVersions.Has "v"
      const args = rest.map((a) => this.operand(a, dot, st, pos));
      if (piped) args.push(piped.value);
      return this.operand(head, dot, st, pos, args);
    }
    if (rest.length > 0 || piped) throw new TemplateExecError(`can't give argument to non-function`, pos);
    return this.operand(head, dot, st, pos);
  }

  private call(name: string, argNodes: Operand[], dot: unknown, st: State, pos: Pos, piped: { value: unknown } | undefined): unknown {
    if (LAZY.has(name)) {
      const thunks = argNodes.map((a) => () => this.operand(a, dot, st, pos));
      if (piped) thunks.push(() => piped.value);
      if (thunks.length === 0) throw new TemplateExecError(`wrong number of args for ${name}`, pos);
      let last: unknown;
      for (const t of thunks) {
        last = t();
        if (name === 'and' ? !truth(last) : truth(last)) return last;
      }
      return last;
    }
    const args = argNodes.map((a) => this.operand(a, dot, st, pos));
    if (piped) args.push(piped.value);
    switch (name) {
      case 'include': {
        return this.include(String(args[0] ?? ''), args[1], st.depth);
      }
      case 'tpl': {
        return this.tpl(String(args[0] ?? ''), args[1], st.depth, pos);
      }
    }
    const fn = this.funcs[name];
    if (!fn) {
      this.unknownFuncs.add(name);
      throw new TemplateExecError(`function "${name}" not defined`, pos);
    }
    try {
      return fn(...args);
    } catch (e) {
      if (e instanceof TemplateExecError) {
        if (!e.pos) throw new TemplateExecError(e.message, pos);
        throw e;
      }
      throw new TemplateExecError(`error calling ${name}: ${(e as Error).message}`, pos);
    }
  }

  private operand(op: Operand, dot: unknown, st: State, pos: Pos, callArgs?: unknown[]): unknown {
    switch (op.type) {
      case 'dot':
        return this.chain(dot, op.chain, pos, callArgs);
      case 'field':
        return this.chain(dot, op.chain, pos, callArgs);
      case 'var':
        return this.chain(this.lookupVar(st, op.name, pos), op.chain, pos, callArgs);
      case 'pipe': {
        const mark = st.vars.length;
        const v = this.pipeline(op.pipe, dot, st, pos);
        st.vars.length = mark;
        return this.chain(v, op.chain, pos, callArgs);
      }
      case 'string':
      case 'number':
      case 'bool':
        return op.value;
      case 'nil':
        return undefined;
      case 'ident':
        // a function used as an argument: call it without arguments
        return this.call(op.name, [], dot, st, pos, undefined);
    }
  }

  private chain(recv: unknown, chain: string[], pos: Pos, callArgs: unknown[] | undefined): unknown {
    let v = recv;
    for (let i = 0; i < chain.length; i++) {
      const last = i === chain.length - 1;
      v = field(v, chain[i]!, last ? callArgs : undefined, pos);
    }
    if (chain.length === 0 && callArgs) {
      if (typeof v === 'function') return v(...callArgs);
      throw new TemplateExecError(`can't give argument to non-function`, pos);
    }
    return v;
  }
}

function field(recv: unknown, name: string, args: unknown[] | undefined, pos: Pos): unknown {
  if (recv === null || recv === undefined) return undefined;
  if (isMap(recv)) {
    const v = hasOwn(recv, name) ? recv[name] : undefined;
    if (typeof v === 'function') return v(...(args ?? []));
    if (args && args.length > 0) throw new TemplateExecError(`${name} is not a method but has arguments`, pos);
    return v;
  }
  if (typeof recv === 'object' && !Array.isArray(recv)) {
    // ferry's own objects (.Files, .Capabilities…) expose Go-style exported names only
    if (!/^[A-Z]/.test(name)) return undefined;
    const v = (recv as Record<string, unknown>)[name];
    if (typeof v === 'function') return (v as TemplateFunc).apply(recv, args ?? []);
    if (args && args.length > 0) throw new TemplateExecError(`${name} is not a method but has arguments`, pos);
    return v;
  }
  // Go: can't evaluate field of a string, slice, number: lenient nil
  return undefined;
}
