/**
 * Runtime mirror configuration from a load's mapping: for every upstream
 * registry of the bundle, where a node's runtime should pull its images instead.
 * Three formats, one per family of runtimes:
 * - containerd `config_path` (`certs.d/<upstream>/hosts.toml`): a `[host]` per
 *   target, `override_path` when the mapping adds a path prefix. containerd can
 *   only put a prefix in front of the repository, so a `--map` rule that renames
 *   a path is not expressible there: those images are reported as not covered.
 * - k3s/RKE2 `registries.yaml`: `mirrors.<upstream>.endpoint` and `rewrite`
 *   (regexes on the repository; exact per repository when rules differ within one
 *   upstream, since k3s applies them in no defined order); `configs` for TLS.
 * - containers `registries.conf` (CRI-O, podman, skopeo): a `[[registry]]` per
 *   source prefix with its `[[registry.mirror]]`; the longest prefix wins.
 * Tags and digests are untouched: the mirror holds the same digests.
 */
import { isLoopbackHost, parseReference } from '@ferry/oci-client';
import type { TargetMapper } from '../load/mapping.js';
import { writeFileUnder } from '../output-files.js';

export interface MirrorImage {
  /** `registry/repository` upstream, e.g. `docker.io/library/nginx`. */
  source: { registry: string; repository: string };
  /** Where load puts it. */
  target: { registry: string; repository: string };
  /** The mapping rule that placed it (TargetMapper.route). */
  route: { from: { registry: string; path: string }; to: { registry: string; prefix: string } };
}

/** How a runtime reaches a target registry. */
export interface MirrorAccess {
  scheme: 'http' | 'https';
  /** A PEM CA file for its TLS certificate. */
  caFile?: string | undefined;
  skipVerify?: boolean | undefined;
}

export interface MirrorConfigFiles {
  /** Relative paths (`containerd/certs.d/<host>/hosts.toml`, …) and their text. */
  files: Array<{ path: string; text: string }>;
  /** Images a format cannot send to the mirror: one line each, for stderr and the file's comments. */
  uncovered: string[];
}

const HEADER = '# Written by ferry from the load mapping: pull these images from the mirror.';

/** Groups by upstream registry, sorted, for deterministic files. */
function byUpstream(images: MirrorImage[]): Map<string, MirrorImage[]> {
  const out = new Map<string, MirrorImage[]>();
  for (const i of [...images].sort((a, b) => `${a.source.registry}/${a.source.repository}`.localeCompare(`${b.source.registry}/${b.source.repository}`))) {
    const list = out.get(i.source.registry) ?? [];
    list.push(i);
    out.set(i.source.registry, list);
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

/** The target path prefix that, put in front of the whole source repository, gives the target; undefined when none does. */
function prependedPrefix(i: MirrorImage): string | undefined {
  const repo = i.source.repository;
  const target = i.target.repository;
  if (target === repo) return '';
  return target.endsWith(`/${repo}`) ? target.slice(0, -repo.length - 1) : undefined;
}

const str = (s: string) => JSON.stringify(s);

function containerdHosts(upstream: string, images: MirrorImage[], access: (registry: string) => MirrorAccess, uncovered: string[]): string {
  // One [host] per (registry, prefix) that serves these images by prefixing the repository; tried in order.
  const hosts: Array<{ registry: string; prefix: string }> = [];
  const notHere: string[] = [];
  for (const i of images) {
    const prefix = prependedPrefix(i);
    if (prefix === undefined) {
      notHere.push(`${i.source.registry}/${i.source.repository} -> ${i.target.registry}/${i.target.repository}`);
      continue;
    }
    if (!hosts.some((h) => h.registry === i.target.registry && h.prefix === prefix)) hosts.push({ registry: i.target.registry, prefix });
  }
  const lines = [HEADER, `# On a node: /etc/containerd/certs.d/${upstream}/hosts.toml (config_path = "/etc/containerd/certs.d").`];
  for (const n of notHere) {
    lines.push(`# not covered (a --map rule renames the path; containerd can only prefix it): ${n}`);
    uncovered.push(`containerd: ${n}`);
  }
  for (const h of hosts) {
    const a = access(h.registry);
    lines.push('', `[host.${str(`${a.scheme}://${h.registry}${h.prefix ? `/v2/${h.prefix}` : ''}`)}]`, '  capabilities = ["pull", "resolve"]');
    if (h.prefix) lines.push('  override_path = true');
    if (a.caFile) lines.push(`  ca = ${str(a.caFile)}`);
    if (a.skipVerify) lines.push('  skip_verify = true');
  }
  return `${lines.join('\n')}\n`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function k3sRegistries(
  stringify: (doc: unknown) => string,
  groups: Map<string, MirrorImage[]>,
  access: (registry: string) => MirrorAccess,
  uncovered: string[],
): string {
  const mirrors: Record<string, { endpoint: string[]; rewrite?: Record<string, string> }> = {};
  const targets = new Set<string>();
  const notes: string[] = [];
  for (const [upstream, images] of groups) {
    // One endpoint per upstream carries the rewrites: the registry most of its images go to.
    const counts = new Map<string, number>();
    for (const i of images) counts.set(i.target.registry, (counts.get(i.target.registry) ?? 0) + 1);
    const endpoint = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    const here = images.filter((i) => i.target.registry === endpoint);
    for (const i of images.filter((x) => x.target.registry !== endpoint)) {
      const n = `${i.source.registry}/${i.source.repository} -> ${i.target.registry}/${i.target.repository}`;
      notes.push(`# not covered (another mirror registry than ${endpoint} for ${upstream}): ${n}`);
      uncovered.push(`k3s: ${n}`);
    }
    targets.add(endpoint);
    const prefixes = new Set(here.map(prependedPrefix));
    const rewrite: Record<string, string> = {};
    const [only] = prefixes;
    if (prefixes.size === 1 && only !== undefined) {
      if (only) rewrite['^(.*)$'] = `${only}/$1`;
    } else {
      for (const i of here) if (i.target.repository !== i.source.repository) rewrite[`^${escapeRegex(i.source.repository)}$`] = i.target.repository;
    }
    const a = access(endpoint);
    mirrors[upstream] = { endpoint: [`${a.scheme}://${endpoint}`], ...(Object.keys(rewrite).length ? { rewrite } : {}) };
  }
  const configs: Record<string, { tls: { ca_file?: string; insecure_skip_verify?: boolean } }> = {};
  for (const t of [...targets].sort()) {
    const a = access(t);
    if (a.caFile || a.skipVerify) configs[t] = { tls: { ...(a.caFile ? { ca_file: a.caFile } : {}), ...(a.skipVerify ? { insecure_skip_verify: true } : {}) } };
  }
  const doc = { mirrors, ...(Object.keys(configs).length ? { configs } : {}) };
  return `${[HEADER, '# On a node: /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml); restart k3s.', ...notes].join('\n')}\n${stringify(doc)}`;
}

function containersRegistries(groups: Map<string, MirrorImage[]>, access: (registry: string) => MirrorAccess): string {
  const lines = [HEADER, '# On a node: /etc/containers/registries.conf, or a file in /etc/containers/registries.conf.d/.'];
  const cas = new Set<string>();
  for (const images of groups.values()) {
    // One [[registry]] per source prefix of a mapping rule; the longest prefix wins.
    const seen = new Set<string>();
    for (const i of images) {
      const prefix = [i.route.from.registry, i.route.from.path].filter(Boolean).join('/');
      if (seen.has(prefix)) continue;
      seen.add(prefix);
      const a = access(i.route.to.registry);
      if (a.caFile) cas.add(i.route.to.registry);
      const location = [i.route.to.registry, i.route.to.prefix].filter(Boolean).join('/');
      lines.push('', '[[registry]]', `prefix = ${str(prefix)}`, `location = ${str(prefix)}`, '', '[[registry.mirror]]', `location = ${str(location)}`);
      if (a.scheme === 'http' || a.skipVerify) lines.push('insecure = true');
    }
  }
  for (const host of cas) lines.splice(2, 0, `# ${host}: put its CA in /etc/containers/certs.d/${host}/ca.crt (registries.conf names no CA files).`);
  return `${lines.join('\n')}\n`;
}

export interface AccessOptions {
  /** ferry's --ca-file: named as the CA of every HTTPS mirror. */
  caFile?: string | undefined;
  /** ferry's --insecure-registry hosts. */
  insecure: (host: string) => boolean;
  /**
   * The scheme a registry answers on (load has probed it); without it a loopback
   * or insecure host is taken as plain HTTP, any other as HTTPS.
   */
  scheme?: ((host: string) => Promise<'http' | 'https'>) | undefined;
}

/** How a runtime reaches each target registry, from ferry's TLS options. */
export async function mirrorAccess(registries: string[], opts: AccessOptions): Promise<(registry: string) => MirrorAccess> {
  const table = new Map<string, MirrorAccess>();
  for (const host of new Set(registries)) {
    const mayBePlain = opts.insecure(host) || isLoopbackHost(host);
    const scheme = !mayBePlain ? 'https' : opts.scheme ? await opts.scheme(host) : opts.caFile ? 'https' : 'http';
    table.set(host, scheme === 'http' ? { scheme } : { scheme, caFile: opts.caFile, skipVerify: opts.insecure(host) || undefined });
  }
  return (registry) => table.get(registry) ?? { scheme: 'https', caFile: opts.caFile };
}

/** The images of a bundle (full source references) as the mapper places them. */
export function mirrorImages(sources: string[], mapper: TargetMapper): MirrorImage[] {
  return sources.map((ref) => {
    const src = parseReference(ref);
    const target = mapper.map(ref);
    return {
      source: { registry: src.registry, repository: src.repository },
      target: { registry: target.registry, repository: target.repository },
      route: mapper.route(ref),
    };
  });
}

/** The three formats' files for these images. */
export async function mirrorConfigs(images: MirrorImage[], access: (registry: string) => MirrorAccess): Promise<MirrorConfigFiles> {
  // yaml is loaded only when mirror configs are written: it is not on every command's start-up path.
  const { stringify } = await import('yaml');
  const groups = byUpstream(images);
  const uncovered: string[] = [];
  const files: MirrorConfigFiles['files'] = [];
  for (const [upstream, list] of groups) {
    files.push({ path: `containerd/certs.d/${upstream}/hosts.toml`, text: containerdHosts(upstream, list, access, uncovered) });
  }
  files.push({ path: 'k3s/registries.yaml', text: k3sRegistries(stringify, groups, access, uncovered) });
  files.push({ path: 'containers/registries.conf', text: containersRegistries(groups, access) });
  return { files, uncovered };
}

/** Writes the files under `dir` (created when missing; never through a link); returns what is not covered. */
export async function writeMirrorConfigs(dir: string, images: MirrorImage[], access: (registry: string) => MirrorAccess): Promise<MirrorConfigFiles> {
  const out = await mirrorConfigs(images, access);
  for (const f of out.files) await writeFileUnder(dir, f.path, f.text);
  return out;
}
