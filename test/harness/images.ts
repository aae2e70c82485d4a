// Test images built here and pushed with skopeo, so that what tests find in
// a registry never depends on the client under test.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeLayer, sha256Digest } from './layer.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.js';
import { makeTempDir, removeTempDir, run } from './process.js';
import type { TestRegistry } from './registry.js';
import { defaultCredentials, registryFetch } from './registry-fetch.js';

export { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.js';
export { type Credentials, type RegistryEndpoint, type RegistryFetchInit, registryFetch } from './registry-fetch.js';

export interface ImageSpec {
  /** "os/arch[/variant]"; default linux/amd64 and linux/arm64 (variant v8). */
  platforms?: string[];
  /** Layers per platform; default 2. */
  layers?: number;
  /** Uncompressed bytes of each layer's single file; default 64 KiB. */
  layerSize?: number;
  /** Make the first layer identical on every platform. */
  sharedBaseLayer?: boolean;
  /** Same seed and spec, same bytes and digests. Default "ferry". */
  seed?: string;
  /** Tag in the layout's index.json; default "latest" (seedImage uses its own). */
  tag?: string;
  /** A plain image manifest for the first platform instead of an index. */
  single?: boolean;
}

export interface SeededManifest {
  platform: string;
  digest: string;
  bytes: Buffer;
  configDigest: string;
  layerDigests: string[];
}

export interface SeededImage {
  /** Digest and media type of what the tag points at: the index, or the manifest when single. */
  digest: string;
  mediaType: string;
  indexDigest?: string;
  indexBytes?: Buffer;
  /** Set when single. */
  manifestDigest?: string;
  manifests: SeededManifest[];
  /** Every config and layer blob by digest (manifests are in `manifests`). */
  blobs: Map<string, Buffer>;
}

const DEFAULT_PLATFORMS = ['linux/amd64', 'linux/arm64'];

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

function parsePlatform(platform: string): Platform {
  const [os, architecture, variant] = platform.split('/');
  if (!os || !architecture) throw new Error(`bad platform "${platform}", want os/arch[/variant]`);
  // arm64 images conventionally carry variant v8.
  const v = variant ?? (architecture === 'arm64' ? 'v8' : undefined);
  return v ? { os, architecture, variant: v } : { os, architecture };
}

/** An image of seeded layers (see {@link ImageSpec}), built in memory. */
export function buildImage(spec: ImageSpec = {}): SeededImage {
  const seed = spec.seed ?? 'ferry';
  const layerCount = spec.layers ?? 2;
  const layerSize = spec.layerSize ?? 64 * 1024;
  const platforms = spec.single ? [spec.platforms?.[0] ?? 'linux/amd64'] : (spec.platforms ?? DEFAULT_PLATFORMS);
  const json = (value: object) => Buffer.from(JSON.stringify(value));

  const blobs = new Map<string, Buffer>();
  const manifests: SeededManifest[] = [];
  for (const platform of platforms) {
    const parsed = parsePlatform(platform);
    const layers = Array.from({ length: layerCount }, (_, i) => {
      const owner = spec.sharedBaseLayer && i === 0 ? 'base' : platform.replaceAll('/', '-');
      return makeLayer(`${seed}/${owner}/${i}`, `ferry-test/${owner}-${i}.bin`, layerSize);
    });
    const config = json({
      created: '2024-01-01T00:00:00Z',
      ...parsed,
      config: { Env: [`FERRY_TEST_SEED=${seed}`] },
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    });
    const configDigest = sha256Digest(config);
    blobs.set(configDigest, config);
    const layerDigests = layers.map((layer) => {
      const digest = sha256Digest(layer.blob);
      blobs.set(digest, layer.blob);
      return digest;
    });
    const bytes = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((layer, i) => ({
        mediaType: OCI_LAYER_GZIP,
        digest: layerDigests[i],
        size: layer.blob.length,
      })),
    });
    manifests.push({ platform, digest: sha256Digest(bytes), bytes, configDigest, layerDigests });
  }

  const first = manifests[0];
  if (spec.single && first) {
    return { digest: first.digest, mediaType: OCI_MANIFEST, manifestDigest: first.digest, manifests, blobs };
  }
  const indexBytes = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: manifests.map((m) => ({
      mediaType: OCI_MANIFEST,
      digest: m.digest,
      size: m.bytes.length,
      platform: parsePlatform(m.platform),
    })),
  });
  const digest = sha256Digest(indexBytes);
  return { digest, mediaType: OCI_INDEX, indexDigest: digest, indexBytes, manifests, blobs };
}

/** The bytes of what the image's tag points at: its index, or its manifest when single. */
export function topBytes(image: SeededImage): Buffer {
  const bytes = image.indexBytes ?? image.manifests.find((m) => m.digest === image.digest)?.bytes;
  if (!bytes) throw new Error(`image ${image.digest} has no top-level bytes`);
  return bytes;
}

/** Writes an OCI image layout (oci-layout, index.json, blobs/sha256/…) into `dir`. */
export async function makeOciLayout(dir: string, spec: ImageSpec = {}): Promise<SeededImage> {
  const image = buildImage(spec);
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const top = topBytes(image);
  for (const bytes of [...image.blobs.values(), ...image.manifests.map((m) => m.bytes), ...(image.indexBytes ? [image.indexBytes] : [])]) {
    await writeFile(join(blobDir, sha256Digest(bytes).slice('sha256:'.length)), bytes);
  }
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { digest: image.digest, mediaType: image.mediaType, size: top.length, annotations: { 'org.opencontainers.image.ref.name': spec.tag ?? 'latest' } },
      ],
    }),
  );
  return image;
}

function splitRepoTag(repoAndTag: string): { repo: string; tag: string } {
  const colon = repoAndTag.lastIndexOf(':');
  if (colon <= repoAndTag.lastIndexOf('/')) throw new Error(`"${repoAndTag}" has no tag`);
  return { repo: repoAndTag.slice(0, colon), tag: repoAndTag.slice(colon + 1) };
}

/** skopeo flags for reaching `reg`; prefix is "src-", "dest-" or "" (inspect). */
function skopeoRegistryFlags(reg: TestRegistry, prefix: string, creds: string | undefined): string[] {
  const flags = reg.certDir
    ? [`--${prefix}cert-dir`, reg.certDir]
    : // Plain HTTP: skopeo only falls back from HTTPS when verification is off.
      [`--${prefix}tls-verify=false`];
  return creds ? [...flags, `--${prefix}creds`, creds] : flags;
}

function defaultSkopeoCreds(reg: TestRegistry): string | undefined {
  if (reg.auth === 'none') return undefined;
  const creds = defaultCredentials(reg);
  return creds && `${creds.user}:${creds.password}`;
}

/**
 * Generates an image (see {@link makeOciLayout}) and pushes it to
 * `reg` as "repo:tag" with skopeo, as alice when the registry has auth.
 */
export async function seedImage(reg: TestRegistry, repoAndTag: string, spec: ImageSpec = {}): Promise<SeededImage> {
  const { repo, tag } = splitRepoTag(repoAndTag);
  const dir = await makeTempDir('ferry-image-');
  try {
    const layout = join(dir, 'layout');
    const image = await makeOciLayout(layout, { ...spec, tag });
    await run('skopeo', [
      // No trust policy needed for pushing test images; skopeo's scratch files stay in our temp dir.
      '--insecure-policy',
      '--tmpdir',
      dir,
      'copy',
      '--quiet',
      '--all',
      // Without it skopeo may rewrite manifests, and the generated digests would not match.
      '--preserve-digests',
      ...skopeoRegistryFlags(reg, 'dest-', defaultSkopeoCreds(reg)),
      `oci:${layout}:${tag}`,
      `docker://${reg.host}/${repo}:${tag}`,
    ]);
    await assertStored(reg, repo, tag, image);
    return image;
  } finally {
    await removeTempDir(dir);
  }
}

async function assertStored(reg: TestRegistry, repo: string, tag: string, image: SeededImage) {
  const res = await registryFetch(reg, `/v2/${repo}/manifests/${tag}`, {
    headers: { accept: image.mediaType },
  });
  const stored = Buffer.from(await res.arrayBuffer());
  if (!res.ok || sha256Digest(stored) !== image.digest) {
    throw new Error(`skopeo stored ${repo}:${tag} as ${res.status} ${sha256Digest(stored)}, expected ${image.digest}`);
  }
}

/**
 * The exact manifest bytes skopeo reads for `ref` ("repo:tag" or
 * "repo@sha256:…"). `creds` is "user:password"; default alice when the
 * registry has auth.
 */
export function skopeoInspectRaw(reg: TestRegistry, ref: string, opts: { creds?: string } = {}): Promise<Buffer> {
  return run('skopeo', ['inspect', '--raw', ...skopeoRegistryFlags(reg, '', opts.creds ?? defaultSkopeoCreds(reg)), `docker://${reg.host}/${ref}`]);
}
