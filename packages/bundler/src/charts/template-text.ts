/**
 * What a chart's template text says without evaluating it: the defines a
 * template includes, the values it reads, and the strings it compares values
 * with. Discovery uses it to tie a values or literal guess to the one template
 * ferry could not evaluate (not to the whole chart), and to render the other
 * branches a template takes on a string value (`eq .Values.type "postgis"`).
 */
import { type ChartInstance, isMap, put, type RenderFailure, type Values } from '@ferry/helm';

const ACTION = /\{\{-?\s*([\s\S]*?)\s*-?\}\}/g;
const OPENS = new Set(['if', 'range', 'with', 'define', 'block']);
const INCLUDE = /\b(?:include|template)\s+"([^"]+)"/g;

/** Every `define "name"` body of the instances' templates, nesting followed through if/range/with/block … end. */
function definesOf(instances: readonly ChartInstance[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const inst of instances) {
    for (const t of inst.chart.templates) {
      if (!t.text.includes('define')) continue;
      const stack: Array<{ name: string | undefined; start: number }> = [];
      for (const m of t.text.matchAll(ACTION)) {
        const body = m[1]!;
        const word = /^[a-z]+/.exec(body)?.[0];
        if (word !== undefined && OPENS.has(word)) {
          const name = word === 'define' ? /^define\s+"([^"]+)"/.exec(body)?.[1] : undefined;
          stack.push({ name, start: m.index + m[0].length });
        } else if (word === 'end') {
          const open = stack.pop();
          if (open?.name !== undefined) {
            const list = out.get(open.name) ?? [];
            list.push(t.text.slice(open.start, m.index));
            out.set(open.name, list);
          }
        }
      }
    }
  }
  return out;
}

/** A template's text with the bodies of the defines it includes, transitively. */
function withIncludes(text: string, defines: Map<string, string[]>): string {
  const parts = [text];
  const seen = new Set<string>();
  for (let i = 0; i < parts.length; i++) {
    for (const m of parts[i]!.matchAll(INCLUDE)) {
      const name = m[1]!;
      if (seen.has(name)) continue;
      seen.add(name);
      parts.push(...(defines.get(name) ?? []));
    }
  }
  return parts.join('\n');
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface FailedTemplates {
  /** Whether a failed template of the instance reads the values at `path` (`controller.image`, or its parent map). */
  readsValues(inst: ChartInstance, path: string): boolean;
  /** Whether the literal line belongs to a failed template of the instance (its file, or a define it includes). */
  holdsLine(inst: ChartInstance, file: string, line: string): boolean;
}

/** The text of each failed template (with what it includes), to tie guesses to it by what it reads. */
export function failedMentions(instances: readonly ChartInstance[], failures: readonly RenderFailure[]): FailedTemplates {
  const byInstance = new Map<string, Array<{ file: string; text: string }>>();
  if (failures.length > 0) {
    const defines = definesOf(instances);
    for (const f of failures) {
      const text = f.instance.chart.templates.find((t) => t.path === f.file)?.text ?? '';
      const list = byInstance.get(f.instance.path) ?? [];
      list.push({ file: f.file, text: withIncludes(text, defines) });
      byInstance.set(f.instance.path, list);
    }
  }
  return {
    readsValues(inst, path) {
      const failed = byInstance.get(inst.path);
      if (!failed) return false;
      const segments = path.replace(/\[.*$/, '').split('.');
      const prefixes = [segments.join('.')];
      if (segments.length > 1) prefixes.push(segments.slice(0, -1).join('.'));
      const re = new RegExp(`\\.Values\\.(?:${prefixes.map(escapeRegExp).join('|')})(?![A-Za-z0-9_])`);
      return failed.some((f) => re.test(f.text));
    },
    holdsLine(inst, file, line) {
      const failed = byInstance.get(inst.path);
      const trimmed = line.trim();
      return failed?.some((f) => f.file === file || (trimmed !== '' && f.text.includes(trimmed))) ?? false;
    },
  };
}

export interface StringVariant {
  /** The values path (`type`, `cluster.mode`). */
  path: string;
  value: string;
}

/** At most this many extra renders: each is a full render of the chart. */
const MAX_VARIANTS = 6;
const COMPARISONS = [
  /\b(?:eq|ne)\s+\(?\s*\$?\.Values\.([A-Za-z0-9_.]+)\s*\)?\s+"([^"\\]+)"/g,
  /\b(?:eq|ne)\s+"([^"\\]+)"\s+\(?\s*\$?\.Values\.([A-Za-z0-9_.]+)/g,
];

function valueAt(values: Values, path: string): unknown {
  let v: unknown = values;
  for (const k of path.split('.')) {
    if (!isMap(v) || !Object.hasOwn(v, k)) return undefined;
    v = v[k];
  }
  return v;
}

/**
 * The other strings the chart's own templates that deal with images compare a
 * string value with: each is a render with that one value changed (`type:
 * postgis`), so what only that branch names is found as optional. Subcharts'
 * comparisons are left out: their many service and auth modes would cost a
 * render each for what an umbrella's user rarely switches.
 */
export function stringVariants(root: ChartInstance): StringVariant[] {
  const out: StringVariant[] = [];
  const seen = new Set<string>();
  for (const t of root.chart.templates) {
    if (!/image/i.test(t.text) || !t.text.includes('.Values.')) continue;
    for (const [i, re] of COMPARISONS.entries()) {
      for (const m of t.text.matchAll(re)) {
        const [path, value] = i === 0 ? [m[1]!, m[2]!] : [m[2]!, m[1]!];
        const current = valueAt(root.values, path);
        if (typeof current !== 'string' || current === value || seen.has(`${path}\0${value}`)) continue;
        seen.add(`${path}\0${value}`);
        out.push({ path, value });
        if (out.length >= MAX_VARIANTS) return out;
      }
    }
  }
  return out;
}

/** Sets a dotted path in values, making the maps on the way. */
export function setPath(values: Values, path: string, value: unknown): void {
  const keys = path.split('.');
  let m = values;
  for (const k of keys.slice(0, -1)) {
    if (!isMap(m[k])) put(m, k, {});
    m = m[k] as Values;
  }
  put(m, keys.at(-1)!, value);
}
