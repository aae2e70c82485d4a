// The in-memory content of the in-process registry: blobs by digest, linked
// into repositories as registry:2 links them, manifests and tags per
// repository, upload sessions. It checks what registry:2 checks (digests,
// manifests that name missing blobs, tag and name syntax) with node:crypto
// alone, so nothing of the client under test takes part in the checking.
import { createHash, randomUUID } from 'node:crypto';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../media-types.js';
import { RegistryError } from './errors.js';

export const REPOSITORY_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Registries (distribution, Harbor) refuse manifests over 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The manifest types registry:2 stores; anything else is MANIFEST_INVALID. */
export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];
const INDEX_TYPES = new Set<string>([OCI_INDEX, DOCKER_MANIFEST_LIST]);

export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** `algorithm:hex` of `bytes`. */
export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** Digest of the manifest's `subject`, when it has one. */
  subject?: string;
  /** What the referrers API lists: `artifactType`, else an image manifest's config media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface Upload {
  id: string;
  repository: string;
  parts: Buffer[];
  size: number;
}

interface Repository {
  blobs: Set<string>;
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

interface Descriptor {
  digest?: unknown;
  urls?: unknown;
}

export class MemoryStore {
  /** Blob content by digest, shared by every repository that links it. */
  private readonly content = new Map<string, Buffer>();
  private readonly repos = new Map<string, Repository>();
  readonly uploads = new Map<string, Upload>();

  private repo(name: string, create: true): Repository;
  private repo(name: string, create?: false): Repository | undefined;
  private repo(name: string, create = false): Repository | undefined {
    let r = this.repos.get(name);
    if (!r && create) {
      checkName(name);
      r = { blobs: new Set(), manifests: new Map(), tags: new Map() };
      this.repos.set(name, r);
    }
    return r;
  }

  /** Repositories holding anything, sorted as registry:2 lists them. */
  repositories(): string[] {
    return [...this.repos]
      .filter(([, r]) => r.blobs.size > 0 || r.manifests.size > 0)
      .map(([name]) => name)
      .sort();
  }

  // ---- blobs ----

  blob(repository: string, digest: string): Buffer | undefined {
    return this.repo(repository)?.blobs.has(digest) ? this.content.get(digest) : undefined;
  }

  /** Stores `bytes` and links them into `repository`; returns the digest. */
  putBlob(repository: string, bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
    const digest = digestOf(bytes, algorithm);
    this.content.set(digest, Buffer.from(bytes));
    this.repo(repository, true).blobs.add(digest);
    return digest;
  }

  /** A cross-repository mount: links a blob `from` holds into `repository`; false when `from` lacks it. */
  mount(repository: string, digest: string, from: string): boolean {
    if (!this.repo(from)?.blobs.has(digest)) return false;
    this.repo(repository, true).blobs.add(digest);
    return true;
  }

  /** Unlinks a blob from `repository` (the content stays for other repositories). */
  deleteBlob(repository: string, digest: string): boolean {
    return this.repo(repository)?.blobs.delete(digest) ?? false;
  }

  // ---- uploads ----

  startUpload(repository: string): Upload {
    checkName(repository);
    const upload: Upload = { id: randomUUID(), repository, parts: [], size: 0 };
    this.uploads.set(upload.id, upload);
    return upload;
  }

  upload(repository: string, id: string): Upload {
    const upload = this.uploads.get(id);
    if (!upload || upload.repository !== repository) throw new RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id });
    return upload;
  }

  /** Appends a chunk; `start` (from Content-Range) must be where the upload stands. */
  appendUpload(upload: Upload, bytes: Buffer, range?: { start: number; end: number }): void {
    if (range && (range.start !== upload.size || range.end - range.start + 1 !== bytes.length)) {
      throw new RegistryError(416, 'RANGE_INVALID', `chunk ${range.start}-${range.end} does not follow the ${upload.size} bytes received`, undefined, {
        range: rangeHeader(upload.size),
      });
    }
    upload.parts.push(bytes);
    upload.size += bytes.length;
  }

  /** Ends an upload: the content must have `digest`; it is then linked into the upload's repository. */
  finishUpload(upload: Upload, digest: string | null): string {
    if (!digest || !isDigest(digest)) throw new RegistryError(400, 'DIGEST_INVALID', `digest ${digest ?? '(none)'} is not a digest`);
    const bytes = Buffer.concat(upload.parts);
    const actual = digestOf(bytes, algorithmOf(digest));
    if (actual !== digest) throw new RegistryError(400, 'DIGEST_INVALID', undefined, { expected: digest, actual });
    this.uploads.delete(upload.id);
    this.content.set(digest, bytes);
    this.repo(upload.repository, true).blobs.add(digest);
    return digest;
  }

  cancelUpload(upload: Upload): void {
    this.uploads.delete(upload.id);
  }

  // ---- manifests ----

  /** A manifest by tag or digest. */
  manifest(repository: string, reference: string): StoredManifest | undefined {
    const r = this.repo(repository);
    if (!r) return undefined;
    const digest = isDigest(reference) ? reference : r.tags.get(reference);
    return digest === undefined ? undefined : r.manifests.get(digest);
  }

  /**
   * Stores a manifest under a tag or its digest, refusing what registry:2
   * refuses: bad JSON, an unknown media type, a digest reference the bytes do
   * not have, and blobs (or, for an index, manifests) the repository lacks.
   */
  putManifest(repository: string, reference: string, bytes: Buffer, contentType?: string): StoredManifest {
    checkName(repository);
    const byDigest = isDigest(reference);
    if (!byDigest && !TAG.test(reference)) throw new RegistryError(400, 'TAG_INVALID', `invalid tag "${reference}"`, { tag: reference });
    if (bytes.length > MAX_MANIFEST_BYTES) throw new RegistryError(413, 'SIZE_INVALID', `manifest of ${bytes.length} bytes is larger than 4 MiB`);
    let doc: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(bytes.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      doc = parsed as Record<string, unknown>;
    } catch {
      throw new RegistryError(400, 'MANIFEST_INVALID', 'manifest is not a JSON object');
    }
    const header = contentType?.split(';')[0]?.trim().toLowerCase();
    const body = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
    if (body !== undefined && header !== undefined && MANIFEST_TYPES.includes(header) && body !== header) {
      throw new RegistryError(400, 'MANIFEST_INVALID', `mediaType ${body} does not match Content-Type ${header}`);
    }
    const mediaType = header !== undefined && MANIFEST_TYPES.includes(header) ? header : body;
    if (mediaType === undefined || !MANIFEST_TYPES.includes(mediaType)) {
      throw new RegistryError(400, 'MANIFEST_INVALID', `unrecognized manifest content type ${contentType ?? '(none)'}`);
    }
    if (doc.schemaVersion !== 2) throw new RegistryError(400, 'MANIFEST_INVALID', 'schemaVersion must be 2');
    const digest = digestOf(bytes, byDigest ? algorithmOf(reference) : 'sha256');
    if (byDigest && digest !== reference) throw new RegistryError(400, 'DIGEST_INVALID', undefined, { expected: reference, actual: digest });

    const r = this.repo(repository, true);
    const isIndex = INDEX_TYPES.has(mediaType);
    if (isIndex) {
      for (const d of descriptors(doc.manifests, 'manifests')) {
        if (!r.manifests.has(d)) throw new RegistryError(400, 'MANIFEST_BLOB_UNKNOWN', undefined, { digest: d });
      }
    } else {
      const config = doc.config as Descriptor | undefined;
      const own = [...descriptors(config === undefined ? [] : [config], 'config'), ...descriptors(doc.layers, 'layers', true)];
      for (const d of own) {
        if (!r.blobs.has(d)) throw new RegistryError(400, 'MANIFEST_BLOB_UNKNOWN', undefined, { digest: d });
      }
    }
    const subject = (doc.subject as Descriptor | undefined)?.digest;
    const configType = (doc.config as { mediaType?: unknown } | undefined)?.mediaType;
    const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : !isIndex && typeof configType === 'string' ? configType : undefined;
    const stored: StoredManifest = {
      digest,
      mediaType,
      bytes,
      ...(typeof subject === 'string' ? { subject } : {}),
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(isStringRecord(doc.annotations) ? { annotations: doc.annotations } : {}),
    };
    r.manifests.set(digest, stored);
    if (!byDigest) r.tags.set(reference, digest);
    return stored;
  }

  /** By digest: the manifest and every tag on it; by tag: the tag alone (OCI 1.1). */
  deleteManifest(repository: string, reference: string): boolean {
    const r = this.repo(repository);
    if (!r) return false;
    if (!isDigest(reference)) return r.tags.delete(reference);
    if (!r.manifests.delete(reference)) return false;
    for (const [tag, digest] of r.tags) if (digest === reference) r.tags.delete(tag);
    return true;
  }

  /** Tags of a repository, sorted; undefined when the repository is unknown. */
  tags(repository: string): string[] | undefined {
    const r = this.repo(repository);
    return r && (r.manifests.size > 0 || r.blobs.size > 0) ? [...r.tags.keys()].sort() : undefined;
  }

  /** Manifests of `repository` whose subject is `digest`, sorted by digest. */
  referrers(repository: string, digest: string): StoredManifest[] {
    const r = this.repo(repository);
    if (!r) return [];
    return [...r.manifests.values()].filter((m) => m.subject === digest).sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }
}

function checkName(name: string): void {
  if (name.length > 255 || !REPOSITORY_NAME.test(name)) throw new RegistryError(400, 'NAME_INVALID', undefined, { name });
}

/** The digests of a descriptor list; foreign layers (with `urls`) are not the registry's to hold. */
function descriptors(list: unknown, field: string, skipForeign = false): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new RegistryError(400, 'MANIFEST_INVALID', `${field} is not a list`);
  const out: string[] = [];
  for (const d of list as Descriptor[]) {
    if (typeof d?.digest !== 'string' || !isDigest(d.digest))
      throw new RegistryError(400, 'MANIFEST_INVALID', `${field} holds a descriptor without a valid digest`);
    if (skipForeign && Array.isArray(d.urls) && d.urls.length > 0) continue;
    out.push(d.digest);
  }
  return out;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** The `Range` an upload answers with: `0-<last byte>`, `0-0` while empty (as registry:2). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}
