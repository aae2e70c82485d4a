/**
 * `.helmignore` as helm's pkg/ignore reads it, quirks kept: one Go
 * filepath.Match pattern a line (`#` comments, blank lines skipped, `**`
 * refused); `!` negates, a trailing `/` matches directories only, a leading `/`
 * anchors at the chart root, a pattern with a `/` matches the whole path and
 * one without only the base name; `templates/.?*` is always added last. Rules
 * are tried in order and the first match decides, and a negated rule that does
 * NOT match a path ignores it (helm's Rules.Ignore).
 */
import { usageError } from '@ferry/oci-client';

export interface HelmignoreRule {
  /** The line as written (trimmed). */
  raw: string;
  negate: boolean;
  mustDir: boolean;
  match: (path: string) => boolean;
}

/** The rule helm's AddDefaults adds after a chart's own: dot files right in templates/. */
const DEFAULT_RULE = 'templates/.?*';

/** Parses a .helmignore (empty text: only the default rule). `origin` names the chart in errors. */
export function parseHelmignore(text: string, origin: string): HelmignoreRule[] {
  const rules: HelmignoreRule[] = [];
  const lines = [...text.split('\n'), DEFAULT_RULE];
  lines.forEach((line, n) => {
    let rule = line.trim();
    if (rule === '' || rule.startsWith('#')) return;
    const raw = rule;
    if (rule.includes('**')) throw usageError(`${origin}/.helmignore:${n + 1}: double-star (**) syntax is not supported (helm refuses it too)`);
    if (globRegExp(rule) === undefined) throw usageError(`${origin}/.helmignore:${n + 1}: "${raw}" is not a valid pattern`);
    let negate = false;
    if (rule.startsWith('!')) {
      negate = true;
      rule = rule.slice(1);
    }
    let mustDir = false;
    if (rule.endsWith('/')) {
      mustDir = true;
      rule = rule.slice(0, -1);
    }
    const anchored = rule.startsWith('/');
    if (anchored) rule = rule.slice(1);
    const re = globRegExp(rule);
    if (re === undefined) throw usageError(`${origin}/.helmignore:${n + 1}: "${raw}" is not a valid pattern`);
    const structural = anchored || rule.includes('/');
    rules.push({ raw, negate, mustDir, match: (p) => re.test(structural ? p : baseName(p)) });
  });
  return rules;
}

/** helm's Rules.Ignore for a posix path relative to the chart root. */
export function helmIgnores(rules: readonly HelmignoreRule[], path: string, isDir: boolean): boolean {
  // the chart root itself is never ignored (helm issue 1776)
  if (path === '' || path === '.' || path === './') return false;
  for (const r of rules) {
    if (r.negate) {
      if (r.mustDir && !isDir) return true;
      if (!r.match(path)) return true;
      continue;
    }
    if (r.mustDir && !isDir) continue;
    if (r.match(path)) return true;
  }
  return false;
}

/**
 * Go's path/filepath.Match pattern (on a `/` system) as a RegExp for the whole
 * name: `*` and `?` stop at `/`, `\` escapes, `[^a-z]` classes must be
 * non-empty. Undefined where Go reports ErrBadPattern.
 */
function globRegExp(pattern: string): RegExp | undefined {
  const chars = [...pattern];
  let re = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= chars.length) return undefined;
      re += escapeRe(chars[i]!);
    } else if (c === '[') {
      const cls = characterClass(chars, i + 1);
      if (cls === undefined) return undefined;
      re += cls.re;
      i = cls.end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 'u');
}

/** A class from just after its `[`: its RegExp and the index of its `]`, as Go's matchChunk and getEsc parse it. */
function characterClass(chars: string[], start: number): { re: string; end: number } | undefined {
  let i = start;
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  /** One class character: `\` escapes; a bare `-` or `]` is a bad pattern, as is the pattern ending. */
  const esc = (): string | undefined => {
    let c = chars[i];
    if (c === undefined || c === '-' || c === ']') return undefined;
    if (c === '\\') {
      c = chars[++i];
      if (c === undefined) return undefined;
    }
    i++;
    return i < chars.length ? c : undefined;
  };
  let body = '';
  let ranges = 0;
  for (;;) {
    if (chars[i] === ']' && ranges > 0) {
      if (body === '') return { re: negated ? '[\\s\\S]' : '[^\\s\\S]', end: i };
      return { re: `[${negated ? '^' : ''}${body}]`, end: i };
    }
    const lo = esc();
    if (lo === undefined) return undefined;
    let hi = lo;
    if (chars[i] === '-') {
      i++;
      const h = esc();
      if (h === undefined) return undefined;
      hi = h;
    }
    // a reversed range matches nothing in Go (and is an error in a RegExp): leave it out
    if (lo.codePointAt(0)! <= hi.codePointAt(0)!) body += lo === hi ? escapeClass(lo) : `${escapeClass(lo)}-${escapeClass(hi)}`;
    ranges++;
  }
}

/** Go's filepath.Base: the last element, trailing slashes dropped. */
function baseName(path: string): string {
  const p = path.replace(/\/+$/, '');
  return p === '' ? (path === '' ? '.' : '/') : p.slice(p.lastIndexOf('/') + 1);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function escapeClass(c: string): string {
  return c.replace(/[\]\\^-]/g, '\\$&');
}
