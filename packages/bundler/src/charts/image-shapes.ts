/**
 * How an image reference is written down in values and in rendered objects:
 * one string, or a map of parts (`{registry, repository, tag, digest}`,
 * `{repository, image, version}`, `{image, tag}`, `{registry, name, tag}`), and
 * which strings are references at all. Used by the values walk (with the
 * chart's global conventions) and by the walk of rendered objects (without:
 * there only what is written counts).
 */
import { parseReference } from '@ferry/oci-client';

/** A key whose string value is an image: `image`, `baseImage`, `SIDECAR_IMAGE`, `imageName`, `STRIMZI_KAFKA_IMAGES`. */
export const IMAGE_NAMED = /images?$|image_?name$/i;

/** Whether the last path component has a tag, or there is a digest. */
export function hasTagOrDigest(ref: string): boolean {
  return ref.slice(ref.lastIndexOf('/') + 1).includes(':') || ref.includes('@');
}

/** Whether the first component of a repository is a registry host (`quay.io/…`, `localhost:5000/…`). */
export function hasHost(repo: string): boolean {
  const slash = repo.indexOf('/');
  if (slash < 0) return false;
  const first = repo.slice(0, slash);
  return first === 'localhost' || /[.:]/.test(first);
}

/** Whether a string parses as a Docker reference (no spaces, URLs or template actions). */
export function parsesAsImage(s: string): boolean {
  if (s === '' || /\s/.test(s) || s.includes('://') || s.includes('{{')) return false;
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}

/** Whether a string looks enough like an image reference to report it: a reference with a path, tag or digest. */
export function looksLikeImage(s: string): boolean {
  if (!parsesAsImage(s)) return false;
  return s.includes('/') || hasTagOrDigest(s);
}

export function joinRegistry(registry: string | undefined, repo: string): string {
  if (!registry || hasHost(repo)) return repo;
  return registry.endsWith('/') ? registry + repo : `${registry}/${repo}`;
}

export function withTag(repo: string, tag: string | undefined, digest: string | undefined): string {
  let ref = repo;
  if (tag && !hasTagOrDigest(ref)) ref += `:${tag.replace(/^:/, '')}`;
  if (digest && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/.test(digest) && !ref.includes('@')) ref += `@${digest}`;
  return ref;
}

/** The conventions a values walk composes with; all empty for rendered objects. */
export interface ShapeContext {
  globalRegistry: string | undefined;
  /** Bitnami's global.imageRegistry replaces even an explicit registry. */
  bitnamiRegistry: string | undefined;
  globalTag: string | undefined;
  appVersion: string | undefined;
}

export const NO_CONVENTIONS: ShapeContext = { globalRegistry: undefined, bitnamiRegistry: undefined, globalTag: undefined, appVersion: undefined };

export interface ObjectImage {
  raw: string;
  /** The keys that made the reference (not to be read again as references of their own). */
  consumed: string[];
  /** Conventions the composition relied on (a chart may not follow them). */
  guesses: string[];
  /** The parts of a reference without its tag or digest (`{repository, image}` alone): the program picks the version, so there is no reference. */
  incomplete?: true;
}

/** A map's scalar members, as the shape rules read them. */
export type ShapeMap = Record<string, unknown>;

/** A non-empty trimmed string, or a number as text. */
export function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number') return String(v);
  return undefined;
}

const has = (m: ShapeMap, k: string) => Object.hasOwn(m, k);

/** The image a map describes, if it is one of the known shapes; `key` is the map's own key (`image`, `driver`). */
export function imageOfObject(m: ShapeMap, key: string, ctx: ShapeContext): ObjectImage | undefined {
  const guesses: string[] = [];
  const registryOwn = scalarText(m.registry);
  let registry = registryOwn;
  if (registryOwn !== undefined && ctx.bitnamiRegistry !== undefined && ctx.bitnamiRegistry !== registryOwn) {
    registry = ctx.bitnamiRegistry;
    guesses.push('global.imageRegistry');
  }
  const globalRegistry = (repo: string): string | undefined => {
    if (registry !== undefined) return registry;
    if (hasHost(repo) || ctx.globalRegistry === undefined) return undefined;
    guesses.push('global registry');
    return ctx.globalRegistry;
  };
  const tag = scalarText(m.tag ?? m.imageTag ?? m.version);
  const digest = scalarText(m.digest) ?? scalarText(m.sha);
  const imageKey = IMAGE_NAMED.test(key);

  const repository = scalarText(m.repository);
  const image = typeof m.image === 'string' ? scalarText(m.image) : undefined;
  if (repository !== undefined && image !== undefined && !hasHost(image)) {
    // {repository, image, version}: the repository is the path the image lives under (`nvcr.io/nvidia` + `driver`)
    const path = image === repository || image.startsWith(`${repository.replace(/\/$/, '')}/`) ? image : `${repository.replace(/\/$/, '')}/${image}`;
    const found: ObjectImage = { raw: withTag(joinRegistry(globalRegistry(path), path), tag, digest), consumed: ['repository', 'image'], guesses };
    if (!hasTagOrDigest(found.raw) && !imageKey) found.incomplete = true;
    return found;
  }
  if (repository !== undefined && (imageKey || has(m, 'tag') || has(m, 'digest'))) {
    // {registry, repository, tag, digest}; an empty tag means global.tag or the chart's appVersion
    const reg = globalRegistry(repository);
    let t = tag;
    if (t === undefined && !hasTagOrDigest(repository) && !digest) {
      if (ctx.globalTag !== undefined) {
        t = ctx.globalTag;
        guesses.push('global tag');
      } else if (ctx.appVersion !== undefined) {
        t = ctx.appVersion;
        guesses.push('appVersion');
      }
    }
    return { raw: withTag(joinRegistry(reg, repository), t, digest), consumed: ['repository'], guesses };
  }
  if (image !== undefined) {
    if (tag !== undefined || digest !== undefined || registryOwn !== undefined || imageKey) {
      // {registry, image, tag, digest} (ingress-nginx) or {image, tag} / {image, imageTag}
      const reg = globalRegistry(image);
      let t = tag;
      if (t === undefined && !hasTagOrDigest(image) && !digest && ctx.globalTag !== undefined) {
        t = ctx.globalTag;
        guesses.push('global tag');
      }
      return { raw: withTag(joinRegistry(reg, image), t, digest), consumed: ['image'], guesses };
    }
    return undefined;
  }
  const name = scalarText(m.name);
  if (name !== undefined && imageKey && tag !== undefined && (registryOwn !== undefined || name.includes('/'))) {
    // {registry, name, tag}: only when clearly an image (under an *image key, with a tag and a registry or path)
    return { raw: withTag(joinRegistry(globalRegistry(name), name), tag, digest), consumed: ['name'], guesses };
  }
  return undefined;
}
