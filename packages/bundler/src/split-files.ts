/**
 * Split files: a bundle written as `BUNDLE.part-000`, `-001`, … each at most a
 * given size, for media with file-size limits. `cat` of the parts is the
 * unsplit bundle byte for byte. A SplitFile presents the parts as one file for
 * positional reads and writes, so nothing is ever joined on disk.
 */
import { writeSync, writevSync } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { usageError } from '@ferry/oci-client';
import { createFresh, openExisting } from './output-files.js';

/** The parts of the positional-file interface that the bundle reader and writer use. */
export interface PositionalFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<unknown>;
  writev(buffers: Buffer[], position: number): Promise<unknown>;
  stat(): Promise<{ size: number }>;
  truncate(length: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export function partName(base: string, index: number): string {
  return `${base}.part-${String(index).padStart(3, '0')}`;
}

const PART_RE = /^(.*)\.part-(\d{3,})$/;

/** Parses `4G`, `700M`, `1.5G`, `4096` (bytes); binary units. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?$/i.exec(text.trim());
  if (!m) throw usageError(`invalid size "${text}": write a number with an optional unit, e.g. 4G, 700M or 1048576`);
  const unit = (m[2] ?? 'b').charAt(0).toLowerCase();
  const mult = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit]!;
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1024 * 1024) throw usageError(`invalid size "${text}": parts must be at least 1 MiB`);
  return n;
}

/**
 * The parts of a split bundle named by `path`: a part (`X.part-000` or any
 * other), a quoted glob (`X.part-*`), or the base name `X` when only parts exist.
 * Undefined when `path` is not a split bundle.
 */
export async function findParts(path: string): Promise<string[] | undefined> {
  let base: string | undefined;
  const m = PART_RE.exec(path);
  if (m) base = m[1];
  else if (path.endsWith('.part-*')) base = path.slice(0, -'.part-*'.length);
  else if (!(await exists(path)) && (await exists(partName(path, 0)))) base = path;
  if (base === undefined) return undefined;
  const dir = dirname(base);
  const prefix = `${basename(base)}.part-`;
  const names = (await readdir(dir)).filter((n) => n.startsWith(prefix) && /^\d{3,}$/.test(n.slice(prefix.length)));
  const parts = names.map((n) => Number(n.slice(prefix.length))).sort((a, b) => a - b);
  if (parts.length === 0) throw usageError(`no parts of ${base} found (expected ${partName(base, 0)}, …)`);
  parts.forEach((n, i) => {
    if (n !== i) throw usageError(`part ${partName(base!, i)} of the split bundle is missing`);
  });
  return parts.map((n) => join(dir, prefix + String(n).padStart(3, '0')));
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The largest write done synchronously by writeSmall. */
export const SMALL_WRITE = 64 * 1024;

/**
 * A positional write of at most SMALL_WRITE bytes, done synchronously: it lands
 * in the page cache in microseconds, where an asynchronous write costs a
 * thread-pool round trip (~70 µs of CPU). For 1500 small blobs, their manifests
 * and headers that is most of what writing the bundle costs. Returns the bytes written.
 */
export function writeSmall(file: FileHandle | SplitFile, buffers: Buffer[], position: number): number {
  return file instanceof SplitFile ? file.writevSync(buffers, position) : writevSync(file.fd, buffers, position);
}

interface Part {
  fh: FileHandle;
  start: number;
  size: number;
}

/** Several files seen as one, by position. */
export class SplitFile implements PositionalFile {
  private constructor(private readonly parts: Part[]) {}

  /** Opens existing parts for reading (or 'r+' for writing), in order. */
  static async open(paths: string[], flags: 'r' | 'r+' = 'r'): Promise<SplitFile> {
    const parts: Part[] = [];
    let start = 0;
    try {
      for (const p of paths) {
        const fh = flags === 'r+' ? await openExisting(p) : await open(p, flags);
        const size = (await fh.stat()).size;
        parts.push({ fh, start, size });
        start += size;
      }
    } catch (e) {
      await Promise.all(parts.map((p) => p.fh.close()));
      throw e;
    }
    return new SplitFile(parts);
  }

  /** Creates (replacing whatever file or link was there) parts of `partSize` bytes (the last holds the rest) for `total` bytes. */
  static async create(paths: string[], total: number, partSize: number): Promise<SplitFile> {
    const parts: Part[] = [];
    try {
      for (let i = 0, start = 0; start < total; i++, start += partSize) {
        const fh = await createFresh(paths[i]!);
        const size = Math.min(partSize, total - start);
        await fh.truncate(size);
        parts.push({ fh, start, size });
      }
    } catch (e) {
      await Promise.all(parts.map((p) => p.fh.close()));
      throw e;
    }
    return new SplitFile(parts);
  }

  /** The pieces of [position, position+length) in each part. */
  private *spans(position: number, length: number): Generator<{ part: Part; at: number; from: number; len: number }> {
    let done = 0;
    for (const part of this.parts) {
      if (done >= length) return;
      const pos = position + done;
      if (pos >= part.start + part.size || pos < part.start) continue;
      const len = Math.min(length - done, part.start + part.size - pos);
      yield { part, at: pos - part.start, from: done, len };
      done += len;
    }
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    let total = 0;
    for (const s of this.spans(position, length)) {
      const { bytesRead } = await s.part.fh.read(buffer, offset + s.from, s.len, s.at);
      total += bytesRead;
      if (bytesRead < s.len) break;
    }
    return { bytesRead: total };
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    for (const s of this.spans(position, length)) {
      await s.part.fh.write(buffer, offset + s.from, s.len, s.at);
    }
  }

  async writev(buffers: Buffer[], position: number): Promise<void> {
    let pos = position;
    for (const b of buffers) {
      await this.write(b, 0, b.length, pos);
      pos += b.length;
    }
  }

  /** See writeSmall. */
  writevSync(buffers: Buffer[], position: number): number {
    let written = 0;
    for (const b of buffers) {
      for (const s of this.spans(position + written, b.length)) {
        const n = writeSync(s.part.fh.fd, b, s.from, s.len, s.at);
        written += n;
        if (n < s.len) return written;
      }
    }
    return written;
  }

  async stat(): Promise<{ size: number }> {
    return { size: this.parts.reduce((n, p) => n + p.size, 0) };
  }

  async truncate(): Promise<void> {
    // Parts are created at their final sizes.
  }

  async sync(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.fh.sync()));
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.fh.close()));
  }
}
