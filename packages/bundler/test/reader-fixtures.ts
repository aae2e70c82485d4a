/**
 * Test fixtures for the bundle reader and inspect: OCI image layouts built by
 * hand (random layers, configs, manifests, indexes), and tar files built block
 * by block so that every header field can be chosen, including broken ones.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeTarHeader, TAR_END_OF_ARCHIVE, tarPadding } from '@ferry/oci-client';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, sha256Digest } from '@ferry/test/harness';
import { type FerryJson, serializeFerryJson } from '../src/format/ferry-json.js';

export { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST };
export const OCI_LAYER = OCI_LAYER_GZIP;

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export const sha256 = sha256Digest;

export function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Blobs by digest, plus helpers that make manifests from them. */
export class BlobSet {
  readonly blobs = new Map<string, Buffer>();

  add(bytes: Buffer, mediaType: string): Desc {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /** A real gzip stream of random bytes (skopeo recompresses what is not gzip). */
  layer(size: number): Desc {
    return this.add(gzipSync(randomBytes(size), { level: 1 }), OCI_LAYER);
  }

  /** A config for a platform, then a manifest of it with these layers. */
  image(platform: { os: string; architecture: string; variant?: string }, layers: Desc[]): Desc {
    const config = this.add(Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })), OCI_CONFIG);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));
    return this.add(manifest, OCI_MANIFEST);
  }

  index(children: Desc[]): Desc {
    return this.add(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children })), OCI_INDEX);
  }
}

export function named(d: Desc, ref: string): Desc {
  return { ...d, annotations: { 'org.opencontainers.image.ref.name': ref, 'io.containerd.image.name': ref } };
}

export const OCI_LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

export function indexJson(images: Desc[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: images }));
}

/** Writes an OCI image layout directory. */
export async function writeLayoutDir(dir: string, images: Desc[], blobs: BlobSet, extra: Record<string, Buffer> = {}): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT);
  await writeFile(join(dir, 'index.json'), indexJson(images));
  for (const [name, bytes] of Object.entries(extra)) await writeFile(join(dir, name), bytes);
  for (const [digest, bytes] of blobs.blobs) await writeFile(join(dir, 'blobs', 'sha256', hexOf(digest)), bytes);
}

/**
 * Two images sharing layers: a two-platform image (amd64, arm64) and a
 * single-platform one reusing the amd64 base layer.
 */
export function twoImages(): { blobs: BlobSet; app: Desc; tool: Desc; base: Desc; refs: string[] } {
  const blobs = new BlobSet();
  const base = blobs.layer(40_000);
  const armBase = blobs.layer(30_000);
  const appLayer = blobs.layer(10_000);
  const amd = blobs.image({ os: 'linux', architecture: 'amd64' }, [base, appLayer]);
  const arm = blobs.image({ os: 'linux', architecture: 'arm64', variant: 'v8' }, [armBase, appLayer]);
  const app = blobs.index([
    { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  const tool = blobs.image({ os: 'linux', architecture: 'amd64' }, [base, blobs.layer(5_000)]);
  return { blobs, app, tool, base, refs: ['registry.test/team/app:1.0', 'registry.test/team/tool:2.0'] };
}

// --- tar by hand ---

export interface RawEntry {
  name: string;
  data?: Buffer;
  /** typeflag, '0' unless given. */
  type?: string;
  /** The size written in the header; data.length unless given. */
  headerSize?: number;
  linkname?: string;
  /** Use the ustar prefix field for the part before the last '/'. */
  prefix?: string;
  /** Corrupt the checksum. */
  badChecksum?: boolean;
}

/** One ustar header block, filled field by field. */
export function ustarHeader(e: RawEntry): Buffer {
  const b = Buffer.alloc(512);
  const size = e.headerSize ?? e.data?.length ?? 0;
  b.write(e.name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.fill(0x20, 148, 156);
  b.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) b.write(e.linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  if (e.prefix) b.write(e.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  if (e.badChecksum) sum += 1;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** A header with the size in GNU base-256 form. */
export function base256Header(name: string, size: number): Buffer {
  const b = ustarHeader({ name, headerSize: 0 });
  b.fill(0, 124, 136);
  b[124] = 0x80;
  let v = size;
  for (let i = 135; i > 124; i--) {
    b[i] = v % 256;
    v = Math.floor(v / 256);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

export function paxRecords(records: Record<string, string>): Buffer {
  return Buffer.concat(
    Object.entries(records).map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(rest) + 1;
      while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
      return Buffer.from(`${len}${rest}`);
    }),
  );
}

/** Header block(s) and padded data of one entry. */
export function rawEntry(e: RawEntry): Buffer {
  const data = e.data ?? Buffer.alloc(0);
  return Buffer.concat([ustarHeader(e), data, Buffer.alloc(tarPadding(data.length))]);
}

export function rawTar(parts: Buffer[], end = true): Buffer {
  return Buffer.concat([...parts, ...(end ? [TAR_END_OF_ARCHIVE] : [])]);
}

/** A file entry as the bundle writer encodes it (@ferry/oci-client tar.ts). */
export function writerEntry(name: string, data: Buffer): Buffer {
  return Buffer.concat([encodeTarHeader({ name, size: data.length, type: 'file', mtime: 0 }), data, Buffer.alloc(tarPadding(data.length))]);
}

export function writerDir(name: string): Buffer {
  return encodeTarHeader({ name, size: 0, type: 'directory', mtime: 0 });
}

/** The ferry.json of a bundle holding `images` (sizes and totals computed from the blobs). */
export function ferryJsonFor(
  images: Array<{ ref: string; desc: Desc; platforms: string[]; size: number }>,
  totals: FerryJson['totals'],
  base: FerryJson['base'] = null,
): Buffer {
  return serializeFerryJson({
    formatVersion: 1,
    tool: 'ferry 0.1.0',
    created: '2024-01-01T00:00:00Z',
    inputs: { references: images.map((i) => i.ref), charts: [], platforms: null, dockerPlatform: null },
    images: images.map((i) => ({
      ref: i.ref,
      upstreamDigest: i.desc.digest,
      digest: i.desc.digest,
      mediaType: i.desc.mediaType,
      platforms: i.platforms,
      size: i.size,
    })),
    totals,
    base,
    charts: [],
  });
}

/**
 * A bundle tar in ferry's format (entry order of DESIGN.md section 2), with the
 * writer's header encoder. `omit` leaves blobs out (a delta bundle).
 */
export function ferryBundle(opts: { images: Desc[]; blobs: BlobSet; ferryJson?: Buffer; signature?: Buffer; omit?: Set<string> }): {
  tar: Buffer;
  indexJson: Buffer;
} {
  const idx = indexJson(opts.images);
  const parts = [writerEntry('oci-layout', OCI_LAYOUT), writerEntry('index.json', idx)];
  if (opts.ferryJson) parts.push(writerEntry('ferry.json', opts.ferryJson));
  if (opts.signature) parts.push(writerEntry('ferry.sig', opts.signature));
  parts.push(writerDir('blobs/'), writerDir('blobs/sha256/'));
  for (const [digest, bytes] of opts.blobs.blobs) {
    if (opts.omit?.has(digest)) continue;
    parts.push(writerEntry(`blobs/sha256/${hexOf(digest)}`, bytes));
  }
  parts.push(TAR_END_OF_ARCHIVE);
  return { tar: Buffer.concat(parts), indexJson: idx };
}
