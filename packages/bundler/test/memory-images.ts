/**
 * Images built in memory for the engine's unit tests: an OCI image manifest
 * with its config and layers, and indexes over them, put into a MemoryPlace.
 */
import { createHash } from 'node:crypto';
import { type Descriptor, MediaType, type ParsedManifest, parseManifest } from '@ferry/oci-client';
import type { MemoryPlace } from '../src/places/memory.js';

export function sha(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function descriptor(bytes: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: sha(bytes), size: bytes.length, ...extra };
}

export interface MemoryImage {
  manifest: ParsedManifest;
  config: Buffer;
  layers: Buffer[];
}

/** An image manifest whose config names `platform` and whose layers hold `layers`. */
export function memoryImage(place: MemoryPlace, layers: string[], platform = { os: 'linux', architecture: 'amd64' }): MemoryImage {
  const config = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [] } }));
  const layerBytes = layers.map((l) => Buffer.from(l));
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: descriptor(config, MediaType.OCI_CONFIG),
    layers: layerBytes.map((b) => descriptor(b, 'application/vnd.oci.image.layer.v1.tar+gzip')),
  };
  const manifest = parseManifest(Buffer.from(JSON.stringify(doc)));
  place.blobs.set(sha(config), config);
  for (const b of layerBytes) place.blobs.set(sha(b), b);
  place.manifests.set(manifest.digest, manifest);
  return { manifest, config, layers: layerBytes };
}

/** An index over `children`, each with its platform (or extra descriptor fields). */
export function memoryIndex(place: MemoryPlace, children: Array<{ manifest: ParsedManifest; extra?: Partial<Descriptor> }>, tag?: string): ParsedManifest {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: children.map(({ manifest, extra }) => descriptor(Buffer.from(manifest.bytes), manifest.mediaType, extra)),
  };
  const index = parseManifest(Buffer.from(JSON.stringify(doc)));
  place.manifests.set(index.digest, index);
  if (tag !== undefined) place.tags.set(tag, index.digest);
  return index;
}
