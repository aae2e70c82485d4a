/**
 * A tar holding an OCI image layout (a ferry bundle, or an OCI archive another
 * tool wrote), in one file or in split parts, as layout files for the bundle
 * reader. The tar is indexed once (headers only, see tar-index.ts); every blob
 * is then a byte range read with positional reads, many at once on one handle.
 */
import { Readable } from 'node:stream';
import { usageError } from '@ferry/oci-client';
import type { PositionalFile } from '../split-files.js';
import { type LayoutFiles, READ_CHUNK } from './layout-files.js';
import { indexTar, type TarEntry } from './tar-index.js';

export async function openLayoutTar(path: string, fh: PositionalFile): Promise<LayoutFiles> {
  let entries: Map<string, TarEntry>;
  try {
    entries = await indexTar(fh, { label: path });
  } catch (e) {
    await fh.close();
    throw e;
  }
  const offsets = new Map<string, number>();
  const blobs = new Map<string, number>();
  for (const e of entries.values()) {
    const digest = blobDigest(e);
    if (digest === undefined) continue;
    offsets.set(digest, e.offset);
    blobs.set(digest, e.size);
  }
  return {
    container: 'tar',
    blobs,
    async readFile(name, max) {
      const e = entries.get(name);
      if (e === undefined) return undefined;
      if (e.size > max) throw usageError(`${path} is not a bundle: its ${name} has ${e.size} bytes, more than the ${max} allowed`);
      const buf = Buffer.alloc(e.size);
      await readFully(fh, buf, e.offset, path, name);
      return buf;
    },
    stream: (digest, range) =>
      range
        ? new RegionStream(fh, offsets.get(digest)! + range.start, range.end - range.start + 1, path, digest)
        : new RegionStream(fh, offsets.get(digest)!, blobs.get(digest)!, path, digest),
    read: (digest, buf) => readFully(fh, buf, offsets.get(digest)!, path, digest),
    close: () => fh.close(),
  };
}

function blobDigest(e: TarEntry): string | undefined {
  if (!e.name.startsWith('blobs/')) return undefined;
  const [, alg, hex] = e.name.split('/');
  return `${alg}:${hex}`;
}

/** A byte range of an open file, read with positional reads (many can share one handle). */
class RegionStream extends Readable {
  private pos: number;
  private readonly end: number;

  constructor(
    private readonly fh: PositionalFile,
    offset: number,
    size: number,
    private readonly label: string,
    private readonly digest: string,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.pos = offset;
    this.end = offset + size;
  }

  override _read(): void {
    const want = Math.min(READ_CHUNK, this.end - this.pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafe(want);
    this.fh.read(buf, 0, want, this.pos).then(
      ({ bytesRead }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.destroy(usageError(`${this.label} is truncated: blob ${this.digest} ends early; copy the file again`));
          return;
        }
        this.pos += bytesRead;
        this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      },
      (e: unknown) => {
        if (!this.destroyed) this.destroy(e as Error);
      },
    );
  }
}

export async function readFully(fh: PositionalFile, buf: Buffer, position: number, label: string, digest: string): Promise<void> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) throw usageError(`${label} is truncated: blob ${digest} ends early; copy the file again`);
    got += bytesRead;
  }
}
