// Deterministic content, sha256 digests and minimal tar archives for test
// image layers and the benchmark's corpora.
import { createCipheriv, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * `size` pseudo-random bytes determined by `seed` alone (AES-256-CTR
 * keystream). Random content does not compress, so layer sizes stay close to
 * what the test asked for.
 */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** The bytes of {@link seededBytes} in chunks of at most `chunk`, for content too large to hold. */
export function* seededChunks(seed: string, size: number, chunk = 1 << 20): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(chunk, size));
  for (let left = size; left > 0; left -= chunk) yield cipher.update(left >= chunk ? zeros : zeros.subarray(0, left));
}

export const TAR_BLOCK = 512;
const BLOCK = TAR_BLOCK;

/** A ustar header of a regular file, mode 0644, owner 0, mtime 0 (reproducible). */
export function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  const field = (offset: number, length: number, value: string) => {
    header.write(value, offset, length, 'ascii');
  };
  const octal = (offset: number, length: number, value: number) => {
    field(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  };
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  field(0, 100, name);
  octal(100, 8, 0o644); // mode
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, size);
  octal(136, 12, 0); // mtime: fixed, so layers are reproducible
  field(148, 8, ' '.repeat(8)); // checksum counts as spaces while summing
  field(156, 1, '0'); // regular file
  field(257, 8, 'ustar\x0000');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** A ustar archive of regular files. */
export function tar(files: Array<{ name: string; content: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const { name, content } of files) {
    parts.push(tarHeader(name, content.length), content);
    const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
    parts.push(Buffer.alloc(padding));
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end-of-archive marker
  return Buffer.concat(parts);
}

export interface Layer {
  /** gzip'ed tar: the blob. */
  blob: Buffer;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_id. */
  diffId: string;
}

/** A layer holding one file of `size` seeded bytes. */
export function makeLayer(seed: string, fileName: string, size: number): Layer {
  const archive = tar([{ name: fileName, content: seededBytes(seed, size) }]);
  // zlib writes mtime 0 in the gzip header, so equal input gives equal blobs.
  return { blob: gzipSync(archive), diffId: sha256Digest(archive) };
}
