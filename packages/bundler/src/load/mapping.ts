/**
 * Where images go on load (DESIGN.md section 3): each source reference is put
 * under the target by dropping its registry host (or keeping it as the first
 * path part with keepSourceRegistry); explicit `--map SRC_PREFIX=DST_PREFIX`
 * rules win, the longest matching prefix first. Collisions are found before
 * anything is pushed.
 *
 * Helm charts go to `TARGET/PREFIX/charts/<name>:<tag>` (so that
 * `helm pull oci://TARGET/PREFIX/charts/<name> --version <version>` finds them),
 * whatever --keep-source-registry says, unless a rule matches: first a rule
 * written `charts=DST` or `charts/<name>=DST` (host-less, read against the
 * chart's name in the bundle), then, for a chart that came from a registry, a
 * rule matching its source repository as for images.
 */
import { DOCKER_HUB, normalizeRegistry, parseReference, parseRegistryTarget, type Reference, usageError } from '@ferry/oci-client';

export interface MapRule {
  /** `registry/path` prefix of source repositories, e.g. `docker.io/bitnami`. */
  from: string;
  /** For a rule written `charts[/NAME]=…` (no host): that prefix, matched against chart names. */
  chartPrefix?: string | undefined;
  /** Registry and path the matched part is replaced with, e.g. `harbor.local/vendor/bitnami`. */
  to: { registry: string; prefix: string };
}

export interface MappingOptions {
  /** `HOST[:PORT][/PREFIX]` */
  to: string;
  keepSourceRegistry?: boolean;
  /** `SRC_PREFIX=DST_PREFIX` strings. */
  maps?: string[];
}

export interface Mapping {
  source: string;
  target: Reference;
}

/** A chart to map: its name, registry tag, and where pack read it (an oci:// source can match rules). */
export interface ChartToMap {
  name: string;
  tag: string;
  source?: string | undefined;
}

export class TargetMapper {
  readonly target: { registry: string; prefix: string };
  private readonly rules: MapRule[];

  constructor(private readonly opts: MappingOptions) {
    this.target = parseRegistryTarget(opts.to);
    this.rules = (opts.maps ?? []).map((m) => this.parseRule(m)).sort((a, b) => b.from.length - a.from.length);
  }

  private parseRule(rule: string): MapRule {
    const eq = rule.indexOf('=');
    if (eq <= 0 || eq === rule.length - 1) throw usageError(`invalid --map "${rule}": write SRC_PREFIX=DST_PREFIX, e.g. docker.io/bitnami=harbor.local/vendor`);
    const from = rule.slice(0, eq).replace(/\/+$/, '');
    const toText = rule.slice(eq + 1).replace(/\/+$/, '');
    // A destination whose first part looks like a host is absolute; otherwise it is under --to.
    const first = toText.split('/')[0]!;
    const absolute = first.includes('.') || first.includes(':') || first === 'localhost';
    let to: MapRule['to'];
    try {
      to = absolute
        ? parseRegistryTarget(toText)
        : { registry: this.target.registry, prefix: join(this.target.prefix, parseRegistryTarget(`x/${toText}`).prefix) };
    } catch (e) {
      // Without the parser's own `invalid registry "x/…"` opening: a relative DST is checked as `x/DST`.
      throw usageError(`invalid --map "${rule}": ${(e as Error).message.replace(/^invalid registry "[^"]*": /, '')}`);
    }
    const chartPrefix = /^charts(?:\/|$)/.test(from) ? from : undefined;
    return { from: normalizeSourcePrefix(from, rule), to, chartPrefix };
  }

  /** The target reference of a chart (see the module comment). */
  mapChart(chart: ChartToMap): Reference {
    const path = `charts/${chart.name}`;
    const byName = this.rules
      .filter((r) => r.chartPrefix)
      .sort((a, b) => b.chartPrefix!.length - a.chartPrefix!.length)
      .find((r) => path === r.chartPrefix || path.startsWith(`${r.chartPrefix}/`));
    let registry = this.target.registry;
    let repository: string;
    if (byName) {
      registry = byName.to.registry;
      repository = join(byName.to.prefix, path.slice(byName.chartPrefix!.length).replace(/^\//, ''));
    } else {
      let bySource: { rule: MapRule; full: string } | undefined;
      if (chart.source?.startsWith('oci://')) {
        try {
          const src = parseReference(chart.source.slice('oci://'.length));
          const full = `${src.registry}/${src.repository}`;
          const rule = this.rules.find((r) => full === r.from || full.startsWith(`${r.from}/`));
          if (rule) bySource = { rule, full };
        } catch {
          // an unreadable source: the default place
        }
      }
      if (bySource) {
        registry = bySource.rule.to.registry;
        repository = join(bySource.rule.to.prefix, bySource.full.slice(bySource.rule.from.length).replace(/^\//, ''));
      } else {
        repository = join(this.target.prefix, path);
      }
    }
    if (!repository) throw usageError(`--map sends chart ${chart.name} to ${registry} without a repository name`);
    parseReference(`${registry}/${repository}:${chart.tag}`);
    return { registry, repository, tag: chart.tag };
  }

  /**
   * Maps the images and the charts of a bundle; two of them landing on one
   * target reference is an error, found before anything is pushed.
   */
  mapBundle(sources: string[], charts: ChartToMap[]): { images: Mapping[]; charts: Reference[] } {
    const images = this.mapAll(sources);
    const seen = new Map<string, string>();
    for (const m of images) seen.set(targetKey(m.target), m.source);
    const chartTargets = charts.map((c) => {
      const target = this.mapChart(c);
      const key = targetKey(target);
      const label = `chart ${c.name}:${c.tag}`;
      const other = seen.get(key);
      if (other !== undefined) throw usageError(`${other} and ${label} would both be loaded as ${key}; add a --map rule to separate them`);
      seen.set(key, label);
      return target;
    });
    return { images, charts: chartTargets };
  }

  /**
   * The rule that places a source: its source prefix (`registry[/path]`) and where
   * the rest of the repository goes (`registry`, `prefix`). Mirror configs are
   * written from these: each is one rewrite a runtime can apply by name.
   */
  route(source: string): { from: { registry: string; path: string }; to: { registry: string; prefix: string } } {
    const src = parseReference(source);
    const full = `${src.registry}/${src.repository}`;
    const rule = this.rules.find((r) => full === r.from || full.startsWith(`${r.from}/`));
    if (rule) {
      const slash = rule.from.indexOf('/');
      return { from: { registry: src.registry, path: slash < 0 ? '' : rule.from.slice(slash + 1) }, to: rule.to };
    }
    const prefix = this.opts.keepSourceRegistry ? join(this.target.prefix, hostAsPathComponent(src.registry)) : this.target.prefix;
    return { from: { registry: src.registry, path: '' }, to: { registry: this.target.registry, prefix } };
  }

  /** The target reference of a source reference (full, normalized). */
  map(source: string): Reference {
    const src = parseReference(source);
    const full = `${src.registry}/${src.repository}`;
    const rule = this.rules.find((r) => full === r.from || full.startsWith(`${r.from}/`));
    let registry = this.target.registry;
    let repository: string;
    if (rule) {
      registry = rule.to.registry;
      repository = join(rule.to.prefix, full.slice(rule.from.length).replace(/^\//, ''));
    } else {
      const path = this.opts.keepSourceRegistry ? `${hostAsPathComponent(src.registry)}/${src.repository}` : src.repository;
      repository = join(this.target.prefix, path);
    }
    if (!repository) throw usageError(`--map sends ${source} to ${registry} without a repository name`);
    const target: Reference = { registry, repository };
    if (src.tag) target.tag = src.tag;
    if (src.digest) target.digest = src.digest;
    // Validates the result (length, characters) with the reference parser.
    parseReference(`${registry}/${repository}${target.tag ? `:${target.tag}` : ''}${target.digest ? `@${target.digest}` : ''}`);
    return target;
  }

  /** Maps every source; two sources landing on one target reference is an error. */
  mapAll(sources: string[]): Mapping[] {
    const seen = new Map<string, string>();
    const out: Mapping[] = [];
    for (const source of sources) {
      const target = this.map(source);
      const key = `${target.registry}/${target.repository}${target.tag ? `:${target.tag}` : `@${target.digest}`}`;
      const other = seen.get(key);
      if (other !== undefined && other !== source) throw usageError(`${other} and ${source} would both be loaded as ${key}; add a --map rule to separate them`);
      seen.set(key, source);
      out.push({ source, target });
    }
    return out;
  }
}

function targetKey(target: Reference): string {
  return `${target.registry}/${target.repository}${target.tag ? `:${target.tag}` : `@${target.digest}`}`;
}

function join(prefix: string, rest: string): string {
  return [prefix, rest].filter(Boolean).join('/');
}

/** `127.0.0.1:5000` cannot be a path component; `127.0.0.1_5000` can. */
function hostAsPathComponent(host: string): string {
  return host
    .toLowerCase()
    .replace(/[:[\]]/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_|_$/g, '');
}

function normalizeSourcePrefix(from: string, rule: string): string {
  const parts = from.split('/');
  const first = parts[0]!;
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  // Without a host the prefix is on Docker Hub, as references are (no `library/` added: it is a prefix).
  const registry = isHost ? normalizeRegistry(first) : DOCKER_HUB;
  const path = (isHost ? parts.slice(1) : parts).join('/');
  if (path && !/^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$/.test(path)) {
    throw usageError(`invalid --map "${rule}": "${from}" is not a registry or repository prefix`);
  }
  return path ? `${registry}/${path}` : registry;
}
