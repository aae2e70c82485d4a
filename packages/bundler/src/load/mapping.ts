/**
 * Where images go on load (DESIGN.md section 3): each source reference is put
 * under the target by dropping its registry host (or keeping it as the first
 * path part with keepSourceRegistry); explicit `--map SRC_PREFIX=DST_PREFIX`
 * rules win, the longest matching prefix first. Collisions are found before
 * anything is pushed.
 */
import { DOCKER_HUB, normalizeRegistry, parseReference, parseRegistryTarget, usageError, type Reference } from '@ferry/oci-client';

export interface MapRule {
  /** `registry/path` prefix of source repositories, e.g. `docker.io/bitnami`. */
  from: string;
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
      to = absolute ? parseRegistryTarget(toText) : { registry: this.target.registry, prefix: join(this.target.prefix, parseRegistryTarget(`x/${toText}`).prefix) };
    } catch (e) {
      // Without the parser's own `invalid registry "x/…"` opening: a relative DST is checked as `x/DST`.
      throw usageError(`invalid --map "${rule}": ${(e as Error).message.replace(/^invalid registry "[^"]*": /, '')}`);
    }
    return { from: normalizeSourcePrefix(from, rule), to };
  }

  /** The target reference of a source reference (full, normalized). */
  map(source: string): Reference {
    const src = parseReference(source);
    const full = `${src.registry}/${src.repository}`;
    const rule = this.rules.find((r) => full === r.from || full.startsWith(r.from + '/'));
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

function join(prefix: string, rest: string): string {
  return [prefix, rest].filter(Boolean).join('/');
}

/** `127.0.0.1:5000` cannot be a path component; `127.0.0.1_5000` can. */
function hostAsPathComponent(host: string): string {
  return host.toLowerCase().replace(/[:[\]]/g, '_').replace(/_+/g, '_').replace(/^_|_$/g, '');
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
