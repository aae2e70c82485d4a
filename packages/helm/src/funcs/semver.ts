/**
 * Semantic versions as Masterminds/semver reads them (the parts charts use):
 * parsing, ordering and constraints (`>=1.2 <2`, `~1.2`, `^1`, `1.x`, `||`,
 * hyphen ranges), for Sprig's `semver` and `semverCompare`.
 */
export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  pre: string;
  original: string;
}

export function parseSemver(v: string): SemVer | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(String(v).trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0), pre: m[4] ?? '', original: v };
}

function comparePre(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '') return 1;
  if (b === '') return -1;
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      if (Number(x) !== Number(y)) return Number(x) < Number(y) ? -1 : 1;
    } else if (nx) return -1;
    else if (ny) return 1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export function compareSemver(a: SemVer, b: SemVer): number {
  if (a.major !== b.major) return a.major < b.major ? -1 : 1;
  if (a.minor !== b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch !== b.patch) return a.patch < b.patch ? -1 : 1;
  return comparePre(a.pre, b.pre);
}

function checkTerm(term: string, v: SemVer): boolean {
  const m = /^(!=|>=|=>|<=|=<|>|<|=|~>|~|\^)?\s*v?([0-9xX*]+(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(term.trim());
  if (!m) throw new Error(`improper constraint: ${term}`);
  const op = m[1] ?? '';
  const ver = m[2]!;
  const parts = ver.split(/[-+]/)[0]!.split('.');
  const wild = (p: string | undefined) => p === undefined || p === 'x' || p === 'X' || p === '*';
  const pre = /-([0-9A-Za-z.-]+)/.exec(ver)?.[1] ?? '';
  const maj = wild(parts[0]) ? undefined : Number(parts[0]);
  const min = wild(parts[1]) ? undefined : Number(parts[1]);
  const pat = wild(parts[2]) ? undefined : Number(parts[2]);
  const c: SemVer = { major: maj ?? 0, minor: min ?? 0, patch: pat ?? 0, pre, original: ver };
  // a version with a prerelease only satisfies constraints that allow prereleases
  if (v.pre !== '' && pre === '') return false;
  const cmp = compareSemver(v, c);
  const next = (): SemVer =>
    maj === undefined
      ? { major: Infinity, minor: 0, patch: 0, pre: '', original: '' }
      : min === undefined
        ? { major: maj + 1, minor: 0, patch: 0, pre: '', original: '' }
        : { major: maj, minor: min + 1, patch: 0, pre: '', original: '' };
  switch (op) {
    case '':
    case '=':
      if (maj === undefined) return true;
      if (min === undefined || pat === undefined) return cmp >= 0 && compareSemver(v, next()) < 0;
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '>':
      if (min === undefined || pat === undefined) return compareSemver(v, next()) >= 0;
      return cmp > 0;
    case '<':
      return cmp < 0;
    case '>=':
    case '=>':
      return cmp >= 0;
    case '<=':
    case '=<':
      if (min === undefined || pat === undefined) return compareSemver(v, next()) < 0;
      return cmp <= 0;
    case '~':
    case '~>': {
      const upper = min === undefined ? { ...c, major: c.major + 1, minor: 0, patch: 0, pre: '' } : { ...c, minor: c.minor + 1, patch: 0, pre: '' };
      return cmp >= 0 && compareSemver(v, upper) < 0;
    }
    case '^': {
      let upper: SemVer;
      if (c.major > 0 || min === undefined) upper = { ...c, major: c.major + 1, minor: 0, patch: 0, pre: '' };
      else if (c.minor > 0 || pat === undefined) upper = { ...c, minor: c.minor + 1, patch: 0, pre: '' };
      else upper = { ...c, patch: c.patch + 1, pre: '' };
      return cmp >= 0 && compareSemver(v, upper) < 0;
    }
  }
  return false;
}

export function semverSatisfies(constraint: string, version: string): boolean {
  const v = parseSemver(version);
  if (!v) throw new Error(`invalid semantic version: ${version}`);
  return constraint.split('||').some((alt) => {
    let s = alt.trim();
    // hyphen ranges: "1.2 - 1.4"
    s = s.replace(/(\S+)\s+-\s+(\S+)/g, '>=$1 <=$2');
    const terms = s
      .replace(/([<>=!~^]+)\s+/g, '$1')
      .split(/[\s,]+/)
      .filter((t) => t !== '');
    return terms.every((t) => checkTerm(t, v));
  });
}
