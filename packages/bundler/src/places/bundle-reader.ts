/**
 * Reading a bundle: a ferry bundle tar, an OCI archive another tool wrote
 * (skopeo's `oci-archive:`), or an OCI image layout directory, each through its
 * layout files (bundle-tar.ts, layout-dir.ts), as oras-go's read-only OCI store
 * reads a directory and a tar through one reader. Every blob is read through a
 * digest check, concurrently, without extracting anything. A BundleReader is
 * also an ImageSource, so the copy engine can load from it.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline, type Readable, type Writable } from 'node:stream';
import { pipeline as pipelineTo } from 'node:stream/promises';
import {
  type BlobReadOptions,
  type Descriptor,
  DigestVerifier,
  FerryError,
  formatReference,
  type ImageIndex,
  type ImageSource,
  indexSchema,
  isDigest,
  MAX_MANIFEST_BYTES,
  type ParsedManifest,
  parseManifest,
  parseReference,
  type ReferrerLink,
  usageError,
  verifyBytes,
} from '@ferry/oci-client';
import { isContainerdAlias } from '../cluster/containerd-names.js';
import { type FerryJson, FORMAT_VERSION, parseFerryJson } from '../format/ferry-json.js';
import { findParts, SplitFile } from '../split-files.js';
import { openLayoutTar } from './bundle-tar.js';
import { openLayoutDir } from './layout-dir.js';
import type { ByteRange, LayoutFiles } from './layout-files.js';

export type BundleKind = 'ferry' | 'oci-archive' | 'oci-dir' | 'docker-archive';

export interface BundleImageRef {
  /**
   * The image's name from index.json: `org.opencontainers.image.ref.name`, else
   * `io.containerd.image.name`; for an entry with neither, its name in ferry.json
   * (charts and artifacts, format 2), else its digest.
   */
  ref: string;
  /** Whether the bundle names the image (false: `ref` is the digest). */
  named: boolean;
  /**
   * The tag of an entry whose ref.name is only a tag (skopeo's `oci:DIR:TAG`, as
   * the OCI spec allows), when no repository was given for it: `ref` is then the digest.
   */
  bareTag?: string;
  descriptor: Descriptor;
}

/** A Helm chart of the bundle: an index.json entry whose artifactType is the helm config media type. */
export interface BundleChartRef extends BundleImageRef {
  name: string;
  /** The chart version (from ferry.json; else the tag with `_` read as `+`, helm's convention). */
  version: string;
  /** The registry tag it is pushed under: the version with `+` as `_`. */
  tag: string;
  /** Where pack read it (ferry.json), when known. */
  source: string | undefined;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
/** The media type of a Helm chart's config: the artifactType of a chart's index.json entry. */
export const HELM_CONFIG_MEDIA_TYPE = 'application/vnd.cncf.helm.config.v1+json';

/** Whether an index.json entry is a Helm chart (ferry marks chart entries with their config's media type). */
export function isChartDescriptor(d: Descriptor): boolean {
  return d.artifactType === HELM_CONFIG_MEDIA_TYPE;
}

/** Limits for the small files; a larger one is not a bundle file ferry wrote. */
const MAX_LAYOUT_FILE = 64 * 1024;
const MAX_INDEX_JSON = 64 * 1024 * 1024;
const MAX_SIGNATURE = 64 * 1024;
/** readBlob is for manifests and configs; streams are for anything larger. */
export const MAX_READ_BLOB_BYTES = 64 * 1024 * 1024;

export class BundleReader implements ImageSource {
  /** The path as given, for messages. */
  readonly name: string;
  readonly path: string;
  readonly kind: BundleKind;
  /** 'tar' for a file, 'directory' for an OCI layout directory. */
  readonly container: 'tar' | 'directory';
  /** The exact bytes of index.json and the index they hold. */
  readonly indexJson: Buffer;
  readonly index: ImageIndex;
  /** The exact bytes of ferry.json and its content, when present. */
  readonly ferryJsonBytes: Buffer | undefined;
  readonly ferry: FerryJson | undefined;
  /** `sha256:` of index.json followed by ferry.json; only for ferry bundles. */
  readonly bundleId: string | undefined;
  /** The bytes of ferry.sig, when present. */
  readonly signature: Buffer | undefined;
  /** The bytes of the Docker-style manifest.json (docker load), when present. */
  readonly dockerManifestBytes: Buffer | undefined;
  /** The parsed oci-layout file. */
  readonly imageLayoutVersion: string;
  /** The repository a ref.name that is only a tag is read under (`--name`). */
  readonly repository: string | undefined;

  private readonly files: LayoutFiles;
  private readonly streams = new Set<Readable>();
  private closed = false;

  /** @internal use openBundle */
  constructor(init: {
    path: string;
    files: LayoutFiles;
    indexJson: Buffer;
    index: ImageIndex;
    ferryJsonBytes: Buffer | undefined;
    ferry: FerryJson | undefined;
    signature: Buffer | undefined;
    dockerManifestBytes: Buffer | undefined;
    imageLayoutVersion: string;
    repository?: string | undefined;
  }) {
    this.repository = init.repository;
    this.name = init.path;
    this.path = init.path;
    this.files = init.files;
    this.container = init.files.container;
    this.indexJson = init.indexJson;
    this.index = init.index;
    this.ferryJsonBytes = init.ferryJsonBytes;
    this.ferry = init.ferry;
    this.signature = init.signature;
    this.dockerManifestBytes = init.dockerManifestBytes;
    this.imageLayoutVersion = init.imageLayoutVersion;
    this.kind =
      init.ferry !== undefined
        ? 'ferry'
        : init.files.format === 'docker-archive'
          ? 'docker-archive'
          : init.files.container === 'tar'
            ? 'oci-archive'
            : 'oci-dir';
    this.bundleId =
      init.ferryJsonBytes === undefined ? undefined : `sha256:${createHash('sha256').update(init.indexJson).update(init.ferryJsonBytes).digest('hex')}`;
  }

  /**
   * Every entry of index.json, images and charts, in its order, without
   * containerd's aliases of digest-pinned images (cluster/containerd-names.ts).
   * An entry index.json leaves unnamed takes the name ferry.json gives its digest.
   */
  entries(): BundleImageRef[] {
    const unclaimed = [...(this.ferry?.images ?? []), ...(this.ferry?.charts ?? [])];
    const out: BundleImageRef[] = [];
    this.index.manifests.forEach((descriptor, i) => {
      if (isContainerdAlias(this.index, i, REF_NAME_ANNOTATION, CONTAINERD_NAME_ANNOTATION)) return;
      const a = descriptor.annotations ?? {};
      const refName = a[REF_NAME_ANNOTATION];
      const bareTag = refName && isBareTag(refName) ? refName : undefined;
      // A bare tag names the image together with the containerd name (Docker 25's
      // archives) or the repository given; without either it names no repository.
      const name = bareTag
        ? a[CONTAINERD_NAME_ANNOTATION] || (this.repository ? `${this.repository}:${bareTag}` : undefined)
        : refName || a[CONTAINERD_NAME_ANNOTATION];
      if (bareTag && !name) {
        out.push({ ref: descriptor.digest, named: false, bareTag, descriptor });
        return;
      }
      if (name) {
        out.push({ ref: name, named: true, descriptor });
        return;
      }
      const listed = unclaimed.findIndex((l) => l.digest === descriptor.digest && !isNamedIn(this.index, l.ref));
      if (listed < 0) {
        out.push({ ref: descriptor.digest, named: false, descriptor });
        return;
      }
      out.push({ ref: unclaimed[listed]!.ref, named: true, descriptor });
      unclaimed.splice(listed, 1);
    });
    return out;
  }

  /**
   * Refuses a bundle that names an image by a tag only when no repository was
   * given (`--name REPO`): loading it would invent one.
   */
  requireRepositories(): void {
    const bare = this.entries().find((e) => e.bareTag !== undefined);
    if (bare === undefined) return;
    throw usageError(
      `${this.name} names image ${bare.descriptor.digest} by the tag "${bare.bareTag}" alone (${REF_NAME_ANNOTATION}), without a repository: give one with --name REPO`,
    );
  }

  /** The images of index.json, in its order (every entry but the Helm charts). */
  images(): BundleImageRef[] {
    return this.entries().filter((e) => !isChartDescriptor(e.descriptor));
  }

  /**
   * The Helm charts of index.json, in its order: entries marked with
   * `artifactType: application/vnd.cncf.helm.config.v1+json`, named `charts/<name>:<tag>`.
   */
  charts(): BundleChartRef[] {
    return this.entries()
      .filter((e) => isChartDescriptor(e.descriptor))
      .map((e) => {
        const listed = this.ferry?.charts.find((c) => c.digest === e.descriptor.digest && c.ref === e.ref);
        const parsed = /^(?:.*\/)?([^/:@]+):([^/:@]+)$/.exec(e.ref);
        const name = listed?.name ?? parsed?.[1] ?? e.ref;
        const tag = listed ? listed.version.replaceAll('+', '_') : (parsed?.[2] ?? 'latest');
        const version = listed?.version ?? tag.replaceAll('_', '+');
        return { ...e, name, version, tag, source: listed?.source };
      });
  }

  hasBlob(digest: string): boolean {
    return this.files.blobs.has(digest);
  }

  /** The size of a blob the bundle carries, or undefined. */
  blobSize(digest: string): number | undefined {
    return this.files.blobs.get(digest);
  }

  /** Every blob the bundle carries (reachable or not), in no particular order. */
  blobs(): BlobInfo[] {
    return [...this.files.blobs].map(([digest, size]) => ({ digest, size }));
  }

  /**
   * A stream of the blob's bytes, checked against the descriptor's digest and
   * size as it flows: it fails with an integrity error when they differ. Any
   * number may be open at once.
   */
  openBlob(desc: Pick<Descriptor, 'digest' | 'size'>, opts: BlobReadOptions = {}): Readable {
    this.locate(desc);
    const source = this.files.stream(desc.digest);
    const verifier = new DigestVerifier({ digest: desc.digest, size: desc.size }, `blob ${desc.digest} in ${this.name}`, opts.onBytes);
    this.streams.add(source);
    source.once('close', () => this.streams.delete(source));
    pipeline(source, verifier, () => undefined);
    return verifier;
  }

  /**
   * Bytes `range.start`..`range.end` (inclusive) of a blob, unchecked: a part
   * cannot be digest-checked, so callers check the whole blob first (ferry serve
   * answers a Range request only for a blob it has verified).
   */
  openBlobRange(desc: Pick<Descriptor, 'digest' | 'size'>, range: ByteRange): Readable {
    this.checkRange(desc, range);
    const source = this.files.stream(desc.digest, range);
    this.streams.add(source);
    source.once('close', () => this.streams.delete(source));
    return source;
  }

  /**
   * Writes bytes `range.start`..`range.end` of a blob into `out`, unchecked (as
   * openBlobRange), without ending it: the serving path, which reuses its buffers.
   */
  async sendBlobRange(desc: Pick<Descriptor, 'digest' | 'size'>, range: ByteRange, out: Writable): Promise<void> {
    if (this.files.sendRange === undefined) {
      await pipelineTo(this.openBlobRange(desc, range), out, { end: false });
      return;
    }
    this.checkRange(desc, range);
    await this.files.sendRange(desc.digest, range, out);
  }

  /**
   * A small blob (manifest, config) in memory, digest-checked. Refuses blobs
   * larger than `maxBytes` (64 MiB unless given).
   */
  async readBlob(desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes = MAX_READ_BLOB_BYTES): Promise<Buffer> {
    const size = this.locate(desc);
    if (size > maxBytes) {
      throw new FerryError('unsupported', `blob ${desc.digest} in ${this.name} has ${size} bytes, more than the ${maxBytes} bytes ferry reads into memory`);
    }
    const bytes = Buffer.alloc(size);
    await this.files.read(desc.digest, bytes);
    verifyBytes(bytes, { digest: desc.digest, size: desc.size }, `blob ${desc.digest} in ${this.name}`);
    return bytes;
  }

  // ImageSource

  /**
   * The index.json descriptor named `reference` (its ref.name or containerd name),
   * or, for a digest, the descriptor of that manifest.
   */
  async resolve(reference: string): Promise<Descriptor> {
    if (isDigest(reference)) {
      const listed = this.index.manifests.find((d) => d.digest === reference);
      if (listed) return listed;
      if (this.hasBlob(reference)) {
        const m = await this.getManifest({ mediaType: '', digest: reference, size: this.blobSize(reference)! });
        return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
      }
      throw new FerryError('not-found', `bundle ${this.name} has no manifest ${reference}`);
    }
    const found =
      this.index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === reference) ??
      this.index.manifests.find((d) => d.annotations?.[CONTAINERD_NAME_ANNOTATION] === reference) ??
      this.entries().find((e) => e.named && e.ref === reference)?.descriptor;
    if (found) return found;
    const names = this.images()
      .filter((i) => i.named)
      .map((i) => i.ref);
    throw new FerryError(
      'not-found',
      `bundle ${this.name} has no image named "${reference}"` +
        (names.length ? `; it has ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … (${names.length} in all)` : ''}` : '; it names no images'),
    );
  }

  /** The referrers ferry.json says the bundle carries for `subject` (its manifests are blobs like any other). */
  async referrers(subject: Pick<Descriptor, 'digest'>): Promise<ReferrerLink[]> {
    const links: ReferrerLink[] = [];
    const seen = new Set<string>();
    for (const r of (this.ferry?.images ?? []).flatMap((i) => i.referrers ?? [])) {
      if (r.subject !== subject.digest || seen.has(r.digest)) continue;
      seen.add(r.digest);
      const descriptor: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
      if (r.artifactType !== null && r.tag === null) descriptor.artifactType = r.artifactType;
      links.push(r.tag === null ? { descriptor } : { descriptor, tag: r.tag });
    }
    return links;
  }

  /** A manifest (image or index) from the bundle, digest-checked, at most 4 MiB. */
  async getManifest(desc: Pick<Descriptor, 'digest' | 'size'> & { mediaType?: string }): Promise<ParsedManifest> {
    const size = this.blobSize(desc.digest) ?? desc.size;
    if (size > MAX_MANIFEST_BYTES || desc.size > MAX_MANIFEST_BYTES) {
      throw new FerryError(
        'unsupported',
        `manifest ${desc.digest} in ${this.name} has ${Math.max(size, desc.size)} bytes, more than 4 MiB (${MAX_MANIFEST_BYTES} bytes), the limit registries enforce; ferry refuses it`,
      );
    }
    const bytes = await this.readBlob(desc, MAX_MANIFEST_BYTES);
    const parsed = parseManifest(bytes, desc.mediaType || undefined);
    if (parsed.digest !== desc.digest) {
      // readBlob checked the bytes; this only differs for a sha512 descriptor.
      return { ...parsed, digest: desc.digest };
    }
    return parsed;
  }

  /** Closes the file; streams still open fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams) s.destroy(new FerryError('usage', `bundle ${this.name} was closed while a blob was being read`));
    this.streams.clear();
    await this.files.close();
  }

  /** Refuses a range that is not inside the blob. */
  private checkRange(desc: Pick<Descriptor, 'digest' | 'size'>, range: ByteRange): void {
    const size = this.locate(desc);
    if (!(Number.isInteger(range.start) && Number.isInteger(range.end) && range.start >= 0 && range.start <= range.end && range.end < size)) {
      throw usageError(`range ${range.start}-${range.end} is outside blob ${desc.digest} of ${size} bytes`);
    }
  }

  /** The blob's size, once it is known to be carried with the size its descriptor says. */
  private locate(desc: Pick<Descriptor, 'digest' | 'size'>): number {
    if (this.closed) throw usageError(`bundle ${this.name} is closed`);
    const size = this.files.blobs.get(desc.digest);
    if (size === undefined) throw new FerryError('integrity', `bundle ${this.name} lacks blob ${desc.digest}`);
    if (size !== desc.size) {
      throw new FerryError(
        'integrity',
        `integrity check failed for blob ${desc.digest} in ${this.name}: the descriptor says ${desc.size} bytes but the bundle holds ${size}`,
      );
    }
    return size;
  }
}

/**
 * Opens a bundle: a tar file (ferry bundle or OCI archive) or an OCI image layout
 * directory. Throws a usage error when it is neither, or is unsafe to read.
 */
export interface OpenBundleOptions {
  /** The repository for images index.json names by a tag alone (`--name REPO`), e.g. `registry.example/apps/web`. */
  repository?: string | undefined;
}

export async function openBundle(path: string, opts: OpenBundleOptions = {}): Promise<BundleReader> {
  let repository: string | undefined;
  if (opts.repository !== undefined) {
    // The repository must be one a tag completes: no tag or digest of its own.
    try {
      const r = parseReference(`${opts.repository}:t`);
      if (r.digest !== undefined || formatReference(r) === '') throw new Error('no repository');
      repository = formatReference(r).replace(/:t$/, '');
    } catch (e) {
      throw usageError(`invalid --name "${opts.repository}": ${(e as Error).message}; give a repository without tag or digest`);
    }
  }
  const parts = await findParts(path);
  let files: LayoutFiles;
  if (parts) {
    files = await openLayoutTar(path, await SplitFile.open(parts));
  } else {
    let st: Stats;
    try {
      st = await stat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw usageError(code === 'ENOENT' ? `bundle ${path} does not exist` : `cannot open bundle ${path}: ${(e as Error).message}`);
    }
    if (st.isDirectory()) files = await openLayoutDir(path);
    else if (st.isFile()) files = await openLayoutTar(path, await open(path, 'r'));
    else throw usageError(`${path} is not a bundle (not a regular file or directory)`);
  }
  try {
    return new BundleReader({ path, files, repository, ...(await readMetadata(path, (name, max) => files.readFile(name, max))) });
  } catch (e) {
    await files.close();
    throw e;
  }
}

/**
 * Whether a ref.name is a tag alone: the OCI spec lets it be a tag or a whole
 * reference, and a reference ferry reads has a registry or repository path, a
 * tag or a digest; a name without `/`, `:` or `@` is a tag.
 */
export function isBareTag(refName: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(refName);
}

/** Whether an index.json entry carries `name` in either name annotation. */
function isNamedIn(index: ImageIndex, name: string): boolean {
  return index.manifests.some((d) => d.annotations?.[REF_NAME_ANNOTATION] === name || d.annotations?.[CONTAINERD_NAME_ANNOTATION] === name);
}

type ReadFile = (name: string, max: number) => Promise<Buffer | undefined>;

async function readMetadata(path: string, read: ReadFile) {
  const notBundle = (why: string) => usageError(`${path} is not a bundle: ${why}`);

  const layoutBytes = await read('oci-layout', MAX_LAYOUT_FILE);
  if (layoutBytes === undefined) {
    throw notBundle('it has no oci-layout file (a bundle is an OCI image layout: oci-layout, index.json and blobs/)');
  }
  let imageLayoutVersion: string;
  try {
    const doc = JSON.parse(layoutBytes.toString('utf8')) as { imageLayoutVersion?: unknown };
    if (typeof doc.imageLayoutVersion !== 'string') throw new Error('no version');
    imageLayoutVersion = doc.imageLayoutVersion;
  } catch {
    throw notBundle('its oci-layout file is not JSON with an imageLayoutVersion');
  }
  if (!/^1\.\d+\.\d+$/.test(imageLayoutVersion)) {
    throw notBundle(`its OCI image layout version is ${imageLayoutVersion}; ferry reads version 1.x`);
  }

  const indexJson = await read('index.json', MAX_INDEX_JSON);
  if (indexJson === undefined) throw notBundle('it has no index.json');
  let raw: unknown;
  try {
    raw = JSON.parse(indexJson.toString('utf8'));
  } catch {
    throw notBundle('its index.json is not valid JSON');
  }
  const r = indexSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw notBundle(`its index.json is not a valid OCI image index (at ${issue.path.join('.') || 'the top'}: ${issue.message})`);
  }
  const index = r.data as ImageIndex;
  const twice = nameTwice(index);
  if (twice) {
    throw usageError(
      `${path} names ${twice.name} twice, with different digests ${twice.digests[0]} and ${twice.digests[1]}; refusing a bundle whose names are ambiguous`,
    );
  }

  const ferryJsonBytes = await read('ferry.json', MAX_INDEX_JSON);
  let ferry: FerryJson | undefined;
  if (ferryJsonBytes !== undefined) {
    let version: unknown;
    try {
      version = (JSON.parse(ferryJsonBytes.toString('utf8')) as { formatVersion?: unknown }).formatVersion;
    } catch {
      version = undefined;
    }
    if (typeof version === 'number' && version > FORMAT_VERSION) {
      throw usageError(`${path} is a bundle of format version ${version}; this ferry reads format versions up to ${FORMAT_VERSION}: upgrade ferry`);
    }
    try {
      ferry = parseFerryJson(ferryJsonBytes);
    } catch (e) {
      throw usageError(`${path} is not a valid ferry bundle: ${(e as Error).message}`);
    }
  }
  const signature = await read('ferry.sig', MAX_SIGNATURE);
  const dockerManifestBytes = await read('manifest.json', MAX_INDEX_JSON);
  return { indexJson, index, ferryJsonBytes, ferry, signature, dockerManifestBytes, imageLayoutVersion };
}

/**
 * A name index.json gives to two different manifests (in either name annotation):
 * loading it would tag whichever push finished last, so the bundle is refused.
 */
function nameTwice(index: ImageIndex): { name: string; digests: [string, string] } | undefined {
  const seen = new Map<string, string>();
  for (const d of index.manifests) {
    const a = d.annotations ?? {};
    for (const name of new Set([a[REF_NAME_ANNOTATION], a[CONTAINERD_NAME_ANNOTATION]])) {
      if (!name) continue;
      const earlier = seen.get(name);
      if (earlier !== undefined && earlier !== d.digest) return { name, digests: [earlier, d.digest] };
      seen.set(name, d.digest);
    }
  }
  return undefined;
}
