/**
 * The files of an OCI image layout, wherever they are: in a tar (a ferry bundle
 * or another tool's OCI archive, see bundle-tar.ts) or in a directory
 * (layout-dir.ts). The bundle reader reads through this and checks every
 * byte; the stores only find and read them, refusing anything unsafe.
 */
import type { Readable, Writable } from 'node:stream';

export interface LayoutFiles {
  readonly container: 'tar' | 'directory';
  /** Set for a docker archive, whose layout is built from its manifest.json (docker-archive.ts). */
  readonly format?: 'docker-archive';
  /** A top-level file (oci-layout, index.json, ferry.json, ferry.sig) of at most `max` bytes; undefined when absent. */
  readFile(name: string, max: number): Promise<Buffer | undefined>;
  /** Every blob carried, by digest: its size. */
  readonly blobs: ReadonlyMap<string, number>;
  /** A blob's raw bytes, unchecked (the reader checks them); with `range`, bytes start..end (inclusive) only. */
  stream(digest: string, range?: ByteRange): Readable;
  /**
   * Writes bytes `range` of a blob, unchecked, into `out` (not ended), reusing
   * two buffers instead of allocating one per chunk; where absent, `stream` is piped.
   */
  sendRange?(digest: string, range: ByteRange, out: Writable): Promise<void>;
  /** A blob's raw bytes into `buf`, which is exactly its size. */
  read(digest: string, buf: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** A byte range of a blob, both ends inclusive (as HTTP's Range). */
export interface ByteRange {
  start: number;
  end: number;
}

/** Bytes per read when streaming a blob. */
export const READ_CHUNK = 1024 * 1024;
