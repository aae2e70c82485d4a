/**
 * The Docker-style `manifest.json` of a bundle, as Docker 25's `docker save`
 * writes it beside its OCI layout: `[{Config, RepoTags, Layers}]` with paths
 * into `blobs/sha256/`, so `docker load` and `podman load` (which read only
 * manifest.json, and only one image per name) load every image of a multi-image
 * bundle. It points at the blobs already carried: nothing is stored twice. One
 * platform per image: the first `--platform` of the pack, else linux/amd64.
 */
import {
  type Descriptor,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
  parsePlatform,
  parseReference,
  platformFromDescriptor,
  platformMatches,
} from '@ferry/oci-client';

export const DOCKER_MANIFEST_FILE = 'manifest.json';
export const DEFAULT_DOCKER_PLATFORM = 'linux/amd64';

export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export interface DockerImageInput {
  ref: string;
  root: ParsedManifest;
}

/** The platform manifest.json is written for: the pack's first platform, else linux/amd64. */
export function dockerPlatform(platforms: readonly string[] | null | undefined): Platform {
  return parsePlatform(platforms?.[0] ?? DEFAULT_DOCKER_PLATFORM);
}

/** The tag `docker load` gives a reference: the name and tag without a digest; none for a digest alone. */
export function dockerRepoTag(ref: string): string | undefined {
  const r = parseReference(ref);
  return r.tag ? `${r.registry}/${r.repository}:${r.tag}` : undefined;
}

function blobPath(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `blobs/${alg}/${hex}`;
}

/**
 * The manifest.json entries for runnable images: per image the manifest for
 * `platform` (the image manifest itself when the root is one). Images that have
 * no such platform are left out (returned in `skipped`); images that come to the
 * same manifest share one entry with all their tags, as `docker save` writes it;
 * a tag goes to the first reference that carries it.
 */
export async function dockerManifest(
  images: DockerImageInput[],
  getManifest: (d: Descriptor) => Promise<ParsedManifest>,
  platform: Platform,
): Promise<{ bytes: Buffer; skipped: string[] }> {
  const entries = new Map<string, DockerManifestEntry>();
  const skipped: string[] = [];
  // A tag names one image: the first reference to claim it keeps it.
  const tagged = new Set<string>();
  for (const { ref, root } of images) {
    let manifest: ParsedManifest | undefined = root;
    if (root.kind === 'index') {
      const child = root.manifest.manifests.find((d) => {
        const p = platformFromDescriptor(d);
        return p !== undefined && platformMatches(platform, p);
      });
      manifest = child ? await getManifest(child) : undefined;
    }
    if (manifest?.kind !== 'image') {
      skipped.push(ref);
      continue;
    }
    const m = manifest.manifest as ImageManifest;
    const tag = dockerRepoTag(ref);
    const entry = entries.get(manifest.digest) ?? { Config: blobPath(m.config.digest), RepoTags: [], Layers: m.layers.map((l) => blobPath(l.digest)) };
    if (tag && !tagged.has(tag)) {
      tagged.add(tag);
      entry.RepoTags.push(tag);
    }
    entries.set(manifest.digest, entry);
  }
  return { bytes: Buffer.from(`${JSON.stringify([...entries.values()])}\n`), skipped };
}
