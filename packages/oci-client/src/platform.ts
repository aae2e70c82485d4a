/**
 * Platforms (`os/arch[/variant]`), parsed and matched the way containerd's
 * `platforms` package does it: `linux/arm64` == `linux/arm64/v8`,
 * `linux/x86_64` == `linux/amd64`, `linux/arm` == `linux/arm/v7`,
 * `aarch64` == `arm64`.
 */
import { usageError } from './errors.js';
import type { DescriptorPlatform } from './manifest.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  /** e.g. `10.0.17763.1234` for Windows images; written `windows(10.0.17763)/amd64`. */
  osVersion?: string;
}

// containerd: specifierRe and osRe (without the +feature syntax).
const COMPONENT = /^[A-Za-z0-9_.-]+$/;
const OS_PART = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?$/;

const FORMAT_HINT = 'write OS/ARCH[/VARIANT], e.g. "linux/amd64" or "linux/arm64/v8"';

/**
 * Parses `os/arch[/variant]` (also `os(osversion)/arch`). Values are lowercased but
 * otherwise kept as written; normalization happens when matching.
 */
export function parsePlatform(input: string): Platform {
  const bad = (why: string) => usageError(`invalid platform "${input}": ${why}`);
  const s = input.trim();
  if (s === '') throw bad(`the platform is empty; ${FORMAT_HINT}`);
  const parts = s.split('/');
  if (parts.length < 2) throw bad(`both the operating system and the architecture are needed; ${FORMAT_HINT}`);
  if (parts.length > 3) throw bad(`it has ${parts.length} parts, at most 3 are allowed; ${FORMAT_HINT}`);
  const [osPart = '', arch = '', variant] = parts;
  const os = OS_PART.exec(osPart);
  if (os === null) {
    throw bad(
      osPart === ''
        ? `the operating system is empty; ${FORMAT_HINT}`
        : `operating system "${osPart}" is not valid (letters, digits, "_" and "-", optionally followed by "(version)")`,
    );
  }
  if (arch === '') throw bad(`the architecture is empty; ${FORMAT_HINT}`);
  if (!COMPONENT.test(arch)) throw bad(`architecture "${arch}" is not valid (letters, digits, "_", "." and "-")`);
  if (variant !== undefined) {
    if (variant === '') throw bad(`the variant after the last "/" is empty; ${FORMAT_HINT}`);
    if (!COMPONENT.test(variant)) throw bad(`variant "${variant}" is not valid (letters, digits, "_", "." and "-")`);
  }
  const p: Platform = { os: (os[1] ?? '').toLowerCase(), architecture: arch.toLowerCase() };
  if (variant !== undefined) p.variant = variant.toLowerCase();
  if (os[2] !== undefined && os[2] !== '') p.osVersion = os[2];
  return p;
}

/**
 * Parses a comma-separated list such as `linux/amd64,linux/arm64/v8`. Blanks around
 * entries are ignored; entries that mean the same platform are kept once.
 */
export function parsePlatformList(input: string): Platform[] {
  const entries = input.split(',').map((e) => e.trim());
  if (entries.every((e) => e === '')) {
    throw usageError(`invalid platform list "${input}": it names no platform; ${FORMAT_HINT}, separated by commas`);
  }
  const out: Platform[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry === '') {
      throw usageError(`invalid platform list "${input}": it has an empty entry between commas`);
    }
    const p = parsePlatform(entry);
    const key = formatPlatform(normalizePlatform(p));
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/** `linux/arm64/v8`, `windows(10.0.17763)/amd64`. */
export function formatPlatform(p: Platform): string {
  const os = p.osVersion ? `${p.os}(${p.osVersion})` : p.os;
  return p.variant ? `${os}/${p.architecture}/${p.variant}` : `${os}/${p.architecture}`;
}

/** containerd normalizeArch. */
function normalizeArch(arch: string, variant: string): [string, string] {
  arch = arch.toLowerCase();
  variant = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      return ['386', ''];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', variant === 'v1' ? '' : variant];
    case 'aarch64':
    case 'arm64':
      return ['arm64', variant === '8' || variant === 'v8' ? '' : variant];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (variant === '' || variant === '7') return ['arm', 'v7'];
      if (variant === '5' || variant === '6' || variant === '8') return ['arm', `v${variant}`];
      return ['arm', variant];
    default:
      return [arch, variant];
  }
}

/** The canonical form used for comparisons (containerd `platforms.Normalize`). */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  const [architecture, variant] = normalizeArch(p.architecture, p.variant ?? '');
  const out: Platform = { os, architecture };
  if (variant !== '') out.variant = variant;
  if (p.osVersion) out.osVersion = p.osVersion;
  return out;
}

/** The platform of a descriptor in an index, or undefined when it has none. */
export function platformFromDescriptor(desc: { platform?: DescriptorPlatform | undefined }): Platform | undefined {
  const dp = desc.platform;
  if (dp === undefined) return undefined;
  const p: Platform = { os: dp.os, architecture: dp.architecture };
  if (dp.variant) p.variant = dp.variant;
  if (dp['os.version']) p.osVersion = dp['os.version'];
  return p;
}

/**
 * Whether `actual` (from an index) is the platform the user `wanted`, after
 * normalization: os, architecture and variant must be equal. An OS version in
 * `wanted` must equal the actual one or be a prefix of it at a dot boundary
 * (`10.0.17763` matches `10.0.17763.1234`).
 */
export function platformMatches(wanted: Platform, actual: Platform): boolean {
  const w = normalizePlatform(wanted);
  const a = normalizePlatform(actual);
  if (w.os !== a.os || w.architecture !== a.architecture || (w.variant ?? '') !== (a.variant ?? '')) {
    return false;
  }
  if (w.osVersion) {
    const av = a.osVersion ?? '';
    return av === w.osVersion || av.startsWith(`${w.osVersion}.`);
  }
  return true;
}

/**
 * The platform an image config declares (`os`, `architecture`, `variant`), or
 * undefined when the bytes are not such a config (an artifact's, or not JSON).
 */
export function platformFromConfig(bytes: Uint8Array): Platform | undefined {
  let doc: { os?: unknown; architecture?: unknown; variant?: unknown };
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  if (typeof doc.os !== 'string' || typeof doc.architecture !== 'string' || !doc.os || !doc.architecture) return undefined;
  return { os: doc.os, architecture: doc.architecture, ...(typeof doc.variant === 'string' && doc.variant ? { variant: doc.variant } : {}) };
}
