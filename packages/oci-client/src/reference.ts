/**
 * Image references, parsed and normalized the way Docker does it
 * (github.com/distribution/reference: ParseNormalizedNamed + TagNameOnly):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component [ "/" path-component ]*
 *
 * `nginx` -> `docker.io/library/nginx:latest`, `user/app` -> `docker.io/user/app:latest`,
 * `localhost:5000/app@sha256:…` keeps its registry and has no tag.
 */
import { digestProblem, parseDigest } from './digest.js';
import { usageError } from './errors.js';

export interface Reference {
  /** Registry host as written (with port), except Docker Hub aliases, which become `docker.io`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** The canonical name of Docker Hub in references. */
export const DOCKER_HUB = 'docker.io';
/** The host that actually serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** Names that all mean Docker Hub. */
export const DOCKER_HUB_ALIASES: readonly string[] = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];
export const DEFAULT_TAG = 'latest';
/** distribution/reference RepositoryNameTotalLengthMax (applies to the path). */
export const MAX_REPOSITORY_LENGTH = 255;
export const MAX_TAG_LENGTH = 128;

// Grammar from distribution/reference regexp.go.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_AND_PORT = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const IDENTIFIER = /^[a-f0-9]{64}$/;
const BARE_DIGEST = /^(?:sha256|sha384|sha512):[0-9a-fA-F]{32,}$/;

const COMPONENT_RULE = 'use lowercase letters and digits, separated by ".", "_", "__" or "-"';

/** `docker.io` for any Docker Hub alias (case-insensitive), otherwise the host unchanged. */
export function normalizeRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.includes(registry.toLowerCase()) ? DOCKER_HUB : registry;
}

/** Whether a first path component is a registry host, as Docker decides it. */
function looksLikeRegistry(component: string): boolean {
  return component === 'localhost' || /[.:]/.test(component) || component.toLowerCase() !== component;
}

/** Returns why `path` is not a valid repository path, or undefined. */
function pathProblem(path: string, what: string): string | undefined {
  if (path === '') return `the ${what} is missing`;
  if (path.toLowerCase() !== path) return `${what} must be lowercase ("${path}")`;
  for (const component of path.split('/')) {
    if (component === '') return `${what} "${path}" has an empty path component`;
    if (!PATH_COMPONENT.test(component)) {
      return `path component "${component}" of ${what} "${path}" is not valid (${COMPONENT_RULE})`;
    }
  }
  return undefined;
}

function tagProblem(tag: string): string | undefined {
  if (tag === '') return 'the tag after ":" is empty';
  if (tag.length > MAX_TAG_LENGTH) {
    return `the tag is ${tag.length} characters long, more than the ${MAX_TAG_LENGTH} allowed`;
  }
  if (!TAG.test(tag)) {
    return `tag "${tag}" is not valid (use letters, digits, "_", "." and "-", not starting with "." or "-")`;
  }
  return undefined;
}

function hostProblem(host: string): string | undefined {
  if (!DOMAIN_AND_PORT.test(host)) {
    return `registry "${host}" is not a valid host name, IP address or [IPv6] address with optional :port`;
  }
  return undefined;
}

/**
 * Parses an image reference with Docker's normalization. Throws a usage error
 * (exit 2) naming the bad part.
 */
export function parseReference(input: string): Reference {
  const bad = (why: string) => usageError(`invalid reference "${input}": ${why}`);

  if (input === '') throw bad('an image reference must not be empty');
  if (IDENTIFIER.test(input)) {
    throw bad('a repository name cannot be a 64-character hexadecimal string');
  }
  if (BARE_DIGEST.test(input)) {
    throw bad(`a digest alone is not an image reference; name the repository too, e.g. "nginx@${input}"`);
  }

  // name[:tag]@digest: a name never contains "@".
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest === '') throw bad('the digest after "@" is empty');
    const problem = digestProblem(digest);
    if (problem !== undefined) throw bad(`digest "${digest}" is not valid: ${problem}`);
  }

  // Split the registry off the way splitDockerDomain does.
  let registry: string;
  let remainder: string;
  const slash = rest.indexOf('/');
  if (slash < 0) {
    registry = DOCKER_HUB;
    remainder = rest;
  } else {
    const first = rest.slice(0, slash);
    if (looksLikeRegistry(first)) {
      registry = normalizeRegistry(first);
      remainder = rest.slice(slash + 1);
      const problem = hostProblem(first);
      if (problem !== undefined) throw bad(problem);
    } else {
      registry = DOCKER_HUB;
      remainder = rest;
    }
  }

  // remainder is path[:tag]; the path never contains ":".
  let path = remainder;
  let tag: string | undefined;
  const colon = remainder.indexOf(':');
  if (colon >= 0) {
    path = remainder.slice(0, colon);
    tag = remainder.slice(colon + 1);
  }

  const problem = pathProblem(path, 'repository name');
  if (problem !== undefined) throw bad(problem);
  if (tag !== undefined) {
    const tp = tagProblem(tag);
    if (tp !== undefined) throw bad(tp);
  }

  const repository = registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
  if (repository.length > MAX_REPOSITORY_LENGTH) {
    throw bad(`the repository name is ${repository.length} characters long, more than the ${MAX_REPOSITORY_LENGTH} allowed`);
  }

  const ref: Reference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/** `docker.io/library/nginx:1.27`, `host:5000/a/b@sha256:…`, `repo:tag@sha256:…`. */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** `registry/repository`, without tag or digest. */
export function repositoryOf(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The same reference pinned to `digest` (a tag is kept, as distribution/reference WithDigest does). */
export function withDigest(ref: Reference, digest: string): Reference {
  parseDigest(digest);
  const out: Reference = { registry: ref.registry, repository: ref.repository, digest };
  if (ref.tag !== undefined) out.tag = ref.tag;
  return out;
}

/** The same reference with `tag` (a digest is kept, as distribution/reference WithTag does). */
export function withTag(ref: Reference, tag: string): Reference {
  const problem = tagProblem(tag);
  if (problem !== undefined) throw usageError(`invalid tag "${tag}": ${problem}`);
  const out: Reference = { registry: ref.registry, repository: ref.repository, tag };
  if (ref.digest !== undefined) out.digest = ref.digest;
  return out;
}

/** The host to talk the registry API to: `registry-1.docker.io` for Docker Hub. */
export function registryApiHost(registry: string): string {
  return normalizeRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/** Splits `host[:port]` / `[v6][:port]` into host and port (port undefined if none). */
function splitHostPort(registry: string): { host: string; port: string | undefined } {
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    if (end < 0) return { host: registry, port: undefined };
    const after = registry.slice(end + 1);
    return {
      host: registry.slice(0, end + 1),
      port: after.startsWith(':') ? after.slice(1) : after === '' ? undefined : after,
    };
  }
  const colon = registry.lastIndexOf(':');
  if (colon < 0) return { host: registry, port: undefined };
  return { host: registry.slice(0, colon), port: registry.slice(colon + 1) };
}

/**
 * Whether a registry is on the loopback interface: `localhost`, `127.0.0.0/8` or
 * `[::1]`, with or without a port. Docker talks plain HTTP to these by default.
 */
export function isLoopbackHost(registry: string): boolean {
  const { host, port } = splitHostPort(registry);
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) return false;
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  const v4 = /^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$/.exec(h);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  if (h.startsWith('[') && h.endsWith(']')) {
    try {
      const canonical = new URL(`http://${h}/`).hostname;
      return canonical === '[::1]';
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * Parses a `HOST[:PORT][/PREFIX]` target such as `harbor.local/mirror` or
 * `127.0.0.1:5000`. The first component is always the registry host.
 */
export function parseRegistryTarget(input: string): { registry: string; prefix: string } {
  const bad = (why: string) => usageError(`invalid registry "${input}": ${why}`);
  if (input === '') throw bad('give a registry as HOST[:PORT][/PREFIX]');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(input);
  if (scheme) throw bad(`leave out the scheme "${scheme[0]}" and give HOST[:PORT][/PREFIX]`);
  const trimmed = input.endsWith('/') ? input.slice(0, -1) : input;
  const slash = trimmed.indexOf('/');
  const host = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefix = slash < 0 ? '' : trimmed.slice(slash + 1);
  if (host === '') throw bad('the registry host is missing');
  const hp = hostProblem(host);
  if (hp !== undefined) throw bad(hp);
  const port = /:(\d+)$/.exec(host)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw bad(`port ${port} is not between 1 and 65535`);
  if (slash >= 0) {
    const pp = pathProblem(prefix, 'prefix');
    if (pp !== undefined) throw bad(pp);
    if (prefix.length >= MAX_REPOSITORY_LENGTH) {
      throw bad(`the prefix is ${prefix.length} characters long and leaves no room for a repository name`);
    }
  }
  return { registry: normalizeRegistry(host), prefix };
}
