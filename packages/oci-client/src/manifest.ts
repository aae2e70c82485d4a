/**
 * Manifests and indexes: the OCI image-spec v1.1 types and their Docker v2
 * (schema 2) equivalents, validated with zod. Parsed manifests are never
 * re-serialized: the bytes are kept exactly as received, and the digest is the
 * sha256 of those bytes.
 */
import { z } from 'zod';
import { digestOf, digestProblem } from './digest.js';
import { FerryError } from './errors.js';
import { MAX_JSON_DEPTH, tooDeep } from './json.js';

export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  OCI_DESCRIPTOR: 'application/vnd.oci.descriptor.v1+json',
  OCI_LAYOUT_HEADER: 'application/vnd.oci.layout.header.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  /** Deprecated in image-spec 1.1, still found in Windows images. */
  OCI_LAYER_NONDISTRIBUTABLE: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDISTRIBUTABLE_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDISTRIBUTABLE_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DOCKER_PLUGIN_CONFIG: 'application/vnd.docker.plugin.v1+json',
  HELM_CONFIG: 'application/vnd.cncf.helm.config.v1+json',
  HELM_CHART: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  HELM_PROVENANCE: 'application/vnd.cncf.helm.chart.provenance.v1.prov',
} as const;

/** The Accept list for manifest requests: the four types ferry handles, OCI first. */
export const MANIFEST_ACCEPT: readonly string[] = [MediaType.OCI_MANIFEST, MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST, MediaType.DOCKER_MANIFEST_LIST];

/** Registries (distribution, Harbor) refuse manifests over 4 MiB; so does ferry. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A media type without parameters, lowercased: `Application/JSON; charset=utf-8` -> `application/json`. */
export function normalizeMediaType(mt: string): string {
  const semi = mt.indexOf(';');
  return (semi < 0 ? mt : mt.slice(0, semi)).trim().toLowerCase();
}

export function isIndexMediaType(mt: string): boolean {
  const m = normalizeMediaType(mt);
  return m === MediaType.OCI_INDEX || m === MediaType.DOCKER_MANIFEST_LIST;
}

export function isManifestMediaType(mt: string): boolean {
  const m = normalizeMediaType(mt);
  return m === MediaType.OCI_MANIFEST || m === MediaType.DOCKER_MANIFEST;
}

export function isSchema1MediaType(mt: string): boolean {
  const m = normalizeMediaType(mt);
  return m === MediaType.DOCKER_SCHEMA1 || m === MediaType.DOCKER_SCHEMA1_SIGNED;
}

const digestSchema = z.string().superRefine((s, ctx) => {
  const problem = digestProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `invalid digest "${s}": ${problem}` });
});

const annotationsSchema = z.record(z.string(), z.string());

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

export const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: digestSchema,
  size: z.int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: annotationsSchema.optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
  data: z.base64().optional(),
});

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});

export const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;
export type DescriptorPlatform = z.infer<typeof platformSchema>;
export type ImageManifest = z.infer<typeof imageManifestSchema>;
export type ImageIndex = z.infer<typeof indexSchema>;

export type ParsedManifest =
  | { kind: 'image'; mediaType: string; manifest: ImageManifest; bytes: Uint8Array; digest: string }
  | { kind: 'index'; mediaType: string; manifest: ImageIndex; bytes: Uint8Array; digest: string };

const LABEL: Record<string, string> = {
  [MediaType.OCI_MANIFEST]: 'OCI image manifest',
  [MediaType.OCI_INDEX]: 'OCI image index',
  [MediaType.DOCKER_MANIFEST]: 'Docker image manifest',
  [MediaType.DOCKER_MANIFEST_LIST]: 'Docker manifest list',
};

/** `["layers", 0, "digest"]` -> `layers[0].digest`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(the document itself)' : out;
}

function schema1Error(digest: string): FerryError {
  return new FerryError(
    'unsupported',
    `Docker schema 1 manifests are not supported (manifest ${digest}); ` +
      're-push the image with a current client (docker, buildah, skopeo or crane) to convert it to schema 2 or OCI.',
  );
}

/**
 * Parses manifest bytes as received from a registry or read from a bundle.
 * The media type comes from the body's `mediaType`, else the Content-Type header
 * (when it names a manifest type), else from the shape (`manifests` -> OCI index,
 * `config` -> OCI manifest). Throws FerryError('unsupported') for anything ferry
 * cannot handle, naming what is wrong.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new FerryError(
      'unsupported',
      `manifest of ${bytes.byteLength} bytes is larger than 4 MiB (${MAX_MANIFEST_BYTES} bytes), the limit registries enforce; ferry refuses it.`,
    );
  }
  const digest = digestOf(bytes);
  if (tooDeep(bytes)) {
    throw new FerryError('unsupported', `manifest ${digest} nests JSON deeper than ${MAX_JSON_DEPTH} levels, which no manifest needs; ferry refuses it.`);
  }

  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new FerryError('unsupported', `manifest ${digest} is not valid JSON, so it is not a manifest ferry can read.`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new FerryError('unsupported', `manifest ${digest} is not a JSON object, so it is not a manifest ferry can read.`);
  }
  const body = doc as Record<string, unknown>;

  const bodyType = typeof body.mediaType === 'string' ? normalizeMediaType(body.mediaType) : undefined;
  const headerType = contentType === undefined ? undefined : normalizeMediaType(contentType);

  if (
    body.schemaVersion === 1 ||
    (bodyType !== undefined && isSchema1MediaType(bodyType)) ||
    (bodyType === undefined && headerType !== undefined && isSchema1MediaType(headerType))
  ) {
    throw schema1Error(digest);
  }

  let mediaType: string | undefined = bodyType;
  if (mediaType === undefined && headerType !== undefined && (isIndexMediaType(headerType) || isManifestMediaType(headerType))) {
    mediaType = headerType;
  }
  if (mediaType === undefined) {
    if (Array.isArray(body.manifests)) mediaType = MediaType.OCI_INDEX;
    else if (body.config !== undefined) mediaType = MediaType.OCI_MANIFEST;
    else {
      throw new FerryError(
        'unsupported',
        `manifest ${digest} has no mediaType and neither "manifests" nor "config", so it is neither an image manifest nor an index.`,
      );
    }
  }

  const isIndex = isIndexMediaType(mediaType);
  if (!isIndex && !isManifestMediaType(mediaType)) {
    throw new FerryError(
      'unsupported',
      `manifest ${digest} has media type "${mediaType}", which ferry does not support (supported: ${MANIFEST_ACCEPT.join(', ')}).`,
    );
  }

  const result = isIndex ? indexSchema.safeParse(body) : imageManifestSchema.safeParse(body);
  if (!result.success) {
    const [first, ...more] = result.error.issues;
    const detail = first === undefined ? 'unknown problem' : `${formatPath(first.path)}: ${first.message}`;
    const extra = more.length === 0 ? '' : ` (and ${more.length} more problem${more.length === 1 ? '' : 's'})`;
    throw new FerryError('unsupported', `manifest ${digest} is not a valid ${LABEL[mediaType] ?? mediaType}: ${detail}${extra}.`);
  }

  if (isIndex) {
    return { kind: 'index', mediaType, manifest: result.data as ImageIndex, bytes, digest };
  }
  return { kind: 'image', mediaType, manifest: result.data as ImageManifest, bytes, digest };
}

/** The descriptors a manifest points to: an index's manifests, an image's config and layers (not its subject). */
export function referencedDescriptors(m: ParsedManifest): Descriptor[] {
  if (m.kind === 'index') return [...m.manifest.manifests];
  return [m.manifest.config, ...m.manifest.layers];
}
