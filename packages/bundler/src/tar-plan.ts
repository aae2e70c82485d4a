/**
 * The whole tar planned before a layer byte moves: every entry's header and
 * data offset, and the final size. Entry order is fixed (DESIGN.md section 2):
 * oci-layout, index.json, ferry.json, ferry.sig, the blobs/ directories, then
 * manifests and configs, then layers. Downloads write into their own regions,
 * so the file is the same whatever order they finish in.
 */
import { encodeTarHeader, TAR_END_OF_ARCHIVE, tarPadding } from '@ferry/oci-client';

export interface MetaFile {
  name: string;
  bytes: Buffer;
}

export interface PlannedBlob {
  digest: string;
  size: number;
  /** Known at plan time (manifests); otherwise downloaded. */
  bytes?: Buffer | undefined;
}

export interface LayoutEntry {
  name: string;
  size: number;
  headerOffset: number;
  dataOffset: number;
  header: Buffer;
  /** Content known at plan time (metadata files, manifests). */
  bytes?: Buffer | undefined;
  digest?: string | undefined;
}

export interface BundleLayout {
  entries: LayoutEntry[];
  /** Blob entries by digest. */
  blobs: Map<string, LayoutEntry>;
  totalSize: number;
  /** Offset of the two zero blocks that end the archive. */
  endOffset: number;
}

/**
 * Plans the tar. `blobs` must already be in their final order (manifests and
 * configs first, then layers) and free of duplicates.
 */
export function planLayout(meta: MetaFile[], blobs: PlannedBlob[], mtime: number): BundleLayout {
  const entries: LayoutEntry[] = [];
  const byDigest = new Map<string, LayoutEntry>();
  let offset = 0;
  const add = (name: string, size: number, type: 'file' | 'directory', bytes?: Buffer, digest?: string): LayoutEntry => {
    const header = encodeTarHeader({ name, size, type, mtime });
    const entry: LayoutEntry = { name, size, headerOffset: offset, dataOffset: offset + header.length, header, bytes, digest };
    offset += header.length + size + tarPadding(size);
    entries.push(entry);
    return entry;
  };
  for (const m of meta) add(m.name, m.bytes.length, 'file', m.bytes);
  add('blobs/', 0, 'directory');
  const algorithms = [...new Set(blobs.map((b) => b.digest.split(':')[0]!))].sort();
  for (const alg of algorithms) add(`blobs/${alg}/`, 0, 'directory');
  for (const b of blobs) {
    const [alg, hex] = b.digest.split(':');
    byDigest.set(b.digest, add(`blobs/${alg}/${hex}`, b.size, 'file', b.bytes, b.digest));
  }
  return { entries, blobs: byDigest, totalSize: offset + TAR_END_OF_ARCHIVE.length, endOffset: offset };
}
