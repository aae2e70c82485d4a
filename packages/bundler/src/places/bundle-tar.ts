/**
 * A tar holding an OCI image layout (a ferry bundle, or an OCI archive another
 * tool wrote), in one file or in split parts, as layout files for the bundle
 * reader. The tar is indexed once (headers only, see tar-index.ts); every blob
 * is then a byte range read with positional reads, many at once on one handle.
 * A docker archive (no OCI layout, a manifest.json) is read through the layout
 * docker-archive.ts builds for it. A compressed bundle is refused by its magic
 * bytes: reading by offset needs the tar itself.
 */
import { Readable, type Writable } from 'node:stream';
import { usageError } from '@ferry/oci-client';
import type { PositionalFile } from '../split-files.js';
import { type DockerBlob, dockerArchiveLayout, isDockerArchive } from './docker-archive.js';
import { type LayoutFiles, READ_CHUNK } from './layout-files.js';
import { indexTar, type TarEntry } from './tar-index.js';

export async function openLayoutTar(path: string, fh: PositionalFile): Promise<LayoutFiles> {
  let entries: Map<string, TarEntry>;
  let located: Map<string, DockerBlob>;
  let built = new Map<string, Buffer>();
  let docker = false;
  try {
    await refuseCompressed(path, fh);
    entries = await indexTar(fh, { label: path });
    if (isDockerArchive(entries)) {
      // A second walk of the headers: a docker archive's files have names only its manifest.json knows.
      docker = true;
      const layout = await dockerArchiveLayout(path, fh, await indexTar(fh, { label: path, all: true }));
      located = layout.blobs;
      built = layout.rootFiles;
    } else {
      located = new Map();
      for (const e of entries.values()) {
        const digest = blobDigest(e);
        if (digest !== undefined) located.set(digest, { entry: e });
      }
    }
  } catch (e) {
    await fh.close();
    throw e;
  }
  const blobs = new Map([...located].map(([digest, b]) => [digest, 'entry' in b ? b.entry.size : b.bytes.length]));
  const region = (digest: string, start: number, size: number): Readable => {
    const b = located.get(digest)!;
    if ('bytes' in b) return Readable.from([b.bytes.subarray(start, start + size)]);
    return new RegionStream(fh, b.entry.offset + start, size, path, digest);
  };
  return {
    container: 'tar',
    ...(docker ? { format: 'docker-archive' as const } : {}),
    blobs,
    async readFile(name, max) {
      const mine = built.get(name);
      if (mine !== undefined) return mine;
      const e = entries.get(name);
      if (e === undefined) return undefined;
      if (e.size > max) throw usageError(`${path} is not a bundle: its ${name} has ${e.size} bytes, more than the ${max} allowed`);
      const buf = Buffer.alloc(e.size);
      await readFully(fh, buf, e.offset, path, name);
      return buf;
    },
    stream: (digest, range) => (range ? region(digest, range.start, range.end - range.start + 1) : region(digest, 0, blobs.get(digest)!)),
    sendRange: async (digest, range, out) => {
      const b = located.get(digest)!;
      if ('bytes' in b) return writeChunk(out, b.bytes.subarray(range.start, range.end + 1));
      return sendRegion(fh, b.entry.offset + range.start, range.end - range.start + 1, out, path, digest);
    },
    read: async (digest, buf) => {
      const b = located.get(digest)!;
      if ('bytes' in b) b.bytes.copy(buf);
      else await readFully(fh, buf, b.entry.offset, path, digest);
    },
    close: () => fh.close(),
  };
}

/**
 * A byte range of the file into `out` through two reused buffers: one is read
 * into while the other is being written, so serving allocates nothing per
 * chunk (1 MiB buffers per chunk were the garbage collector's largest load in
 * ferry serve's profile). At most two chunks are in flight: backpressure.
 */
async function sendRegion(fh: PositionalFile, offset: number, size: number, out: Writable, label: string, digest: string): Promise<void> {
  const chunk = Math.min(READ_CHUNK, size);
  const bufs = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  for (let pos = 0, i = 0; pos < size; pos += chunk, i ^= 1) {
    await inFlight[i]; // this buffer's last write is done with it
    const want = Math.min(chunk, size - pos);
    const buf = want === chunk ? bufs[i]! : bufs[i]!.subarray(0, want);
    await readFully(fh, buf, offset + pos, label, digest);
    inFlight[i] = writeChunk(out, buf);
    inFlight[i]!.catch(() => undefined); // awaited below or on the next turn
  }
  await Promise.all(inFlight);
}

/** One write, resolved once `out` no longer needs the buffer; rejected when `out` closes first. */
function writeChunk(out: Writable, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.destroyed) {
      reject(new Error('the connection closed'));
      return;
    }
    const closed = () => reject(new Error('the connection closed'));
    out.once('close', closed);
    out.write(buf, (e) => {
      out.off('close', closed);
      if (e) reject(e);
      else resolve();
    });
  });
}

/** Compressions a bundle may have been put through on the way, by magic bytes. */
const COMPRESSED: Array<[Buffer, string, string]> = [
  [Buffer.from([0x1f, 0x8b]), 'gzip', 'gunzip'],
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd', 'zstd -d'],
];

/**
 * A compressed bundle is refused with the command that undoes it: ferry reads a
 * bundle by offset, which a compressed stream does not allow short of spooling
 * the whole tar to disk, which decompressing once does better.
 */
async function refuseCompressed(path: string, fh: PositionalFile): Promise<void> {
  const head = Buffer.alloc(4);
  const { bytesRead } = await fh.read(head, 0, 4, 0);
  for (const [magic, name, undo] of COMPRESSED) {
    if (bytesRead >= magic.length && head.subarray(0, magic.length).equals(magic)) {
      throw usageError(`${path} is ${name}-compressed; ferry reads bundles uncompressed (blobs are read by offset): decompress it first (${undo})`);
    }
  }
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
