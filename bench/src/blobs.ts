// Deterministic blob content: seeded pseudo-random bytes, ustar archives and
// gzip, streamed to disk so a 400 MB layer never sits in memory.
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { seededChunks, sha256Digest, TAR_BLOCK, tarHeader } from '@ferry/test/harness';

export interface Blob {
  digest: string;
  size: number;
}

export interface LayerBlob extends Blob {
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
}

/** A file inside a layer: `size` seeded bytes. */
export interface LayerFile {
  name: string;
  size: number;
}

/**
 * zlib level 0 writes "stored" deflate blocks: a valid gzip stream at memcpy
 * speed (level 1 runs at ~75 MB/s here). The content is random, so a real
 * compressor would not shrink it either; only the sizes matter to the clients.
 */
const GZIP_LEVEL = 0;

/** A 32-bit seed for {@link rng}, from a string. */
export function seedOf(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32LE(0);
}

/** mulberry32: a small deterministic PRNG giving floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ustar archive of seeded files (the test kit's seeded bytes and tar headers), as a stream of chunks. */
function* tarChunks(seed: string, files: LayerFile[]): Generator<Buffer> {
  for (const f of files) {
    yield tarHeader(f.name, f.size);
    yield* seededChunks(`${seed}/${f.name}`, f.size);
    const pad = (TAR_BLOCK - (f.size % TAR_BLOCK)) % TAR_BLOCK;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * TAR_BLOCK);
}

class HashTap extends Transform {
  readonly hash: Hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Writes a gzip'd tar layer of seeded files into `blobDir` (named by its
 * digest) and returns its descriptor facts. Same seed and files, same bytes.
 */
export async function writeLayer(blobDir: string, seed: string, files: LayerFile[]): Promise<LayerBlob> {
  const tmp = join(blobDir, `.tmp-${randomBytes(6).toString('hex')}`);
  const diff = new HashTap();
  const blob = new HashTap();
  try {
    await pipeline(
      Readable.from(tarChunks(seed, files)),
      diff,
      // mtime 0 and no name in the gzip header: reproducible.
      createGzip({ level: GZIP_LEVEL }),
      blob,
      createWriteStream(tmp),
    );
    const digest = `sha256:${blob.hash.digest('hex')}`;
    await rename(tmp, join(blobDir, digest.slice('sha256:'.length)));
    return { digest, size: blob.size, diffId: `sha256:${diff.hash.digest('hex')}` };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes small JSON content (config, manifest, index) into `blobDir`. */
export async function writeJsonBlob(blobDir: string, value: object): Promise<Blob & { bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = sha256Digest(bytes);
  await writeFile(join(blobDir, digest.slice('sha256:'.length)), bytes);
  return { digest, size: bytes.length, bytes };
}

/**
 * Splits `payload` bytes into files of at most `maxFile` bytes, so that a
 * layer of about `payload` bytes holds a few files as real layers do.
 */
export function filesFor(prefix: string, payload: number, maxFile = 16_000_000): LayerFile[] {
  const files: LayerFile[] = [];
  let left = Math.max(1, Math.round(payload));
  for (let i = 0; left > 0; i++) {
    const size = Math.min(left, maxFile);
    files.push({ name: `${prefix}/f${String(i).padStart(3, '0')}.bin`, size });
    left -= size;
  }
  return files;
}
