/**
 * A docker archive (`docker save`, `podman save --format docker-archive [-m]`)
 * read as an OCI image layout: manifest.json names each image's config and
 * layer files; the registry form it lacks is built here, deterministically, so
 * the same archive always gives the same digests. Each image becomes a Docker
 * v2 schema 2 manifest (config as is, layers as the archive holds them:
 * uncompressed tar, or gzip when the bytes are gzip), and index.json lists the
 * manifests under the archive's RepoTags. Layer digests come from the file's
 * name (Docker 25's `blobs/sha256/<hex>`) or the config's diff_ids (an
 * uncompressed layer's digest is its diff_id); only a gzip layer in the legacy
 * form is hashed here. The reader checks every byte against them all the same.
 */
import { createHash } from 'node:crypto';
import { formatReference, MediaType, parseReference, usageError } from '@ferry/oci-client';
import { z } from 'zod';
import type { PositionalFile } from '../split-files.js';
import { readFully } from './bundle-tar.js';
import { READ_CHUNK } from './layout-files.js';
import type { TarEntry, TarIndex } from './tar-index.js';

/** The uncompressed layer type of Docker's schema 2 (registry:2, containerd and containers/image know it). */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
const MAX_MANIFEST_JSON = 64 * 1024 * 1024;
const MAX_CONFIG = 64 * 1024 * 1024;

const manifestJsonSchema = z
  .array(
    z.object({
      Config: z.string().min(1),
      RepoTags: z.array(z.string().min(1)).nullish(),
      Layers: z.array(z.string().min(1)),
    }),
  )
  .min(1);

const configSchema = z.object({ rootfs: z.object({ diff_ids: z.array(z.string()) }) });

/** A blob of the archive: where its bytes are in the tar, or the bytes built here. */
export type DockerBlob = { entry: TarEntry } | { bytes: Buffer };

export interface DockerArchiveLayout {
  /** The built oci-layout and index.json. */
  rootFiles: Map<string, Buffer>;
  blobs: Map<string, DockerBlob>;
}

/** Whether an indexed tar is a docker archive: manifest.json and no OCI layout. */
export function isDockerArchive(entries: TarIndex): boolean {
  return entries.has('manifest.json') && !entries.has('oci-layout') && !entries.has('index.json');
}

/** Builds the layout of a docker archive indexed with every file (indexTar's `all`). */
export async function dockerArchiveLayout(path: string, fh: PositionalFile, entries: TarIndex): Promise<DockerArchiveLayout> {
  const bad = (why: string) => usageError(`${path} is not a readable docker archive: ${why}`);
  const entryOf = (name: string, what: string): TarEntry => {
    const e = entries.get(
      name
        .split('/')
        .filter((p) => p !== '' && p !== '.')
        .join('/'),
    );
    if (e === undefined) throw bad(`manifest.json names ${what} ${JSON.stringify(name)}, which the archive does not hold`);
    return e;
  };
  const read = async (e: TarEntry, max: number, what: string): Promise<Buffer> => {
    if (e.size > max) throw bad(`its ${what} ${e.name} has ${e.size} bytes, more than the ${max} allowed`);
    const buf = Buffer.alloc(e.size);
    await readFully(fh, buf, e.offset, path, e.name);
    return buf;
  };
  const parsed = manifestJsonSchema.safeParse(parseJson(await read(entries.get('manifest.json')!, MAX_MANIFEST_JSON, 'manifest.json')));
  if (!parsed.success) throw bad('its manifest.json is not a list of {Config, RepoTags, Layers}');

  const blobs = new Map<string, DockerBlob>();
  const manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }> = [];
  for (const image of parsed.data) {
    const configEntry = entryOf(image.Config, 'config');
    const config = await read(configEntry, MAX_CONFIG, 'config');
    const configDigest = sha256(config);
    const diffIds = configSchema.safeParse(parseJson(config));
    if (!diffIds.success) throw bad(`its config ${image.Config} has no rootfs.diff_ids`);
    if (diffIds.data.rootfs.diff_ids.length !== image.Layers.length) {
      throw bad(`its config ${image.Config} lists ${diffIds.data.rootfs.diff_ids.length} layers but manifest.json ${image.Layers.length}`);
    }
    blobs.set(configDigest, { entry: configEntry });
    const layers: Array<{ mediaType: string; size: number; digest: string }> = [];
    for (const [i, layerName] of image.Layers.entries()) {
      const entry = entryOf(layerName, 'layer');
      const gzip = await isGzip(fh, entry, path);
      const named = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(entry.name);
      const digest = named ? `sha256:${named[1]}` : gzip ? await hashEntry(fh, entry, path) : diffIds.data.rootfs.diff_ids[i]!;
      if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw bad(`its config ${image.Config} has an invalid diff_id ${JSON.stringify(digest)}`);
      blobs.set(digest, { entry });
      layers.push({ mediaType: gzip ? MediaType.DOCKER_LAYER : DOCKER_LAYER_TAR, size: entry.size, digest });
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.DOCKER_MANIFEST,
        config: { mediaType: MediaType.DOCKER_CONFIG, size: config.length, digest: configDigest },
        layers,
      }),
    );
    const digest = sha256(manifest);
    blobs.set(digest, { bytes: manifest });
    const descriptor = { mediaType: MediaType.DOCKER_MANIFEST, digest, size: manifest.length };
    const tags = image.RepoTags ?? [];
    if (tags.length === 0) manifests.push(descriptor);
    for (const tag of tags) {
      let ref: string;
      try {
        ref = formatReference(parseReference(tag));
      } catch (e) {
        throw bad(`its manifest.json tags an image ${JSON.stringify(tag)}: ${(e as Error).message}`);
      }
      manifests.push({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': ref } });
    }
  }
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  return {
    rootFiles: new Map([
      ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
      ['index.json', Buffer.from(JSON.stringify(index))],
    ]),
    blobs,
  };
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function isGzip(fh: PositionalFile, e: TarEntry, path: string): Promise<boolean> {
  if (e.size < 2) return false;
  const head = Buffer.alloc(2);
  await readFully(fh, head, e.offset, path, e.name);
  return head[0] === 0x1f && head[1] === 0x8b;
}

/** The sha256 of an entry's bytes, read in chunks. */
async function hashEntry(fh: PositionalFile, e: TarEntry, path: string): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(e.size, 1)));
  for (let at = 0; at < e.size; at += buf.length) {
    const part = buf.subarray(0, Math.min(buf.length, e.size - at));
    await readFully(fh, part, e.offset + at, path, e.name);
    h.update(part);
  }
  return `sha256:${h.digest('hex')}`;
}
