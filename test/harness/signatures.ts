// Signatures and SBOMs built the way cosign and oras write them, pushed with plain
// HTTP (registryFetch), so what the tests find never depends on the client under
// test: a cosign simple-signing payload signed with an ECDSA P-256 key at the
// `sha256-<hex>.sig` tag, an SPDX SBOM manifest with `subject` and `artifactType`
// (and, for a registry without the referrers API, its tag-schema fallback index).
import { generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { sha256Digest } from './layer.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { type RegistryEndpoint, registryFetch } from './registry-fetch.js';

export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosignproject.cosign/simplesigning.v1+json';
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SPDX_JSON = 'application/spdx+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const EMPTY = Buffer.from('{}');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface BuiltArtifact {
  manifest: Buffer;
  digest: string;
  mediaType: string;
  /** Every blob (config and layers) by digest. */
  blobs: Map<string, Buffer>;
}

export interface CosignSignature extends BuiltArtifact {
  /** `sha256-<hex>.sig` of the signed manifest. */
  tag: string;
  payload: Buffer;
}

export function signingKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function cosignTag(digest: string, suffix: 'sig' | 'att' | 'sbom' = 'sig'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

/** cosign's signature of `digest` (a manifest in `repository`): payload, ECDSA signature, the manifest at the .sig tag. */
export function cosignSignature(registryHost: string, repository: string, digest: string, privateKey: KeyObject): CosignSignature {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': `${registryHost}/${repository}` },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  const signature = sign('sha256', payload, privateKey).toString('base64');
  return cosignTagged(digest, 'sig', payload, COSIGN_SIMPLESIGNING, { [COSIGN_SIGNATURE_ANNOTATION]: signature });
}

/** An image as cosign stores one at `sha256-<hex>.<suffix>`: one layer (`payload`), cosign's config for it. */
function cosignTagged(
  digest: string,
  suffix: 'sig' | 'att' | 'sbom',
  payload: Buffer,
  mediaType: string,
  annotations?: Record<string, string>,
): CosignSignature {
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: [sha256Digest(payload)] },
      config: {},
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256Digest(config) },
      layers: [{ mediaType, size: payload.length, digest: sha256Digest(payload), ...(annotations ? { annotations } : {}) }],
    }),
  );
  return {
    ...builtArtifact(manifest, [config, payload]),
    tag: cosignTag(digest, suffix),
    payload,
  };
}

export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';
export const IN_TOTO = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** A DSSE envelope of an in-toto statement, signed (ECDSA) over DSSE's pre-authentication encoding. */
function dsseEnvelope(statement: Buffer, privateKey: KeyObject): object {
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${IN_TOTO.length} ${IN_TOTO} ${statement.length} `), statement]);
  return { payloadType: IN_TOTO, payload: statement.toString('base64'), signatures: [{ keyid: '', sig: sign('sha256', pae, privateKey).toString('base64') }] };
}

/**
 * `cosign attest --key K --type slsaprovenance1 IMAGE@DIGEST` as cosign 2 stores it at
 * the `.att` tag: an image whose one layer is a DSSE envelope
 * (`application/vnd.dsse.envelope.v1+json`) of an in-toto statement about `digest`,
 * signed over DSSE's pre-authentication encoding; the layer carries `predicateType`
 * and an empty `dev.cosignproject.cosign/signature` (the signature is in the envelope).
 */
export function cosignAttestation(
  repository: string,
  digest: string,
  privateKey: KeyObject,
  predicateType = SLSA_PROVENANCE_V1,
  predicate: object = { buildDefinition: { buildType: 'https://example.test/build' } },
): CosignSignature {
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType,
      subject: [{ name: repository, digest: { sha256: digest.slice(7) } }],
      predicate,
    }),
  );
  const envelope = Buffer.from(JSON.stringify(dsseEnvelope(statement, privateKey)));
  return cosignTagged(digest, 'att', envelope, DSSE_ENVELOPE, { [COSIGN_SIGNATURE_ANNOTATION]: '', predicateType });
}

/** `cosign attach sbom --sbom FILE --type spdx IMAGE` at the `.sbom` tag: an unsigned image whose one layer is the SBOM. */
export function cosignSbomAttachment(digest: string, name = 'app'): CosignSignature {
  const sbom = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name, packages: [] }));
  return cosignTagged(digest, 'sbom', sbom, 'text/spdx+json');
}

/**
 * A Sigstore bundle referrer as cosign 3 writes it (`--new-bundle-format`): artifactType
 * `application/vnd.dev.sigstore.bundle.v0.3+json`, the bundle as its one layer, `subject`,
 * and the predicate in `dev.sigstore.bundle.predicateType`: cosign's own for a signature
 * (`https://sigstore.dev/cosign/sign/v1`), the statement's for an attestation.
 */
export function sigstoreBundle(subject: Descriptor, predicateType: string, privateKey: KeyObject): BuiltArtifact {
  const statement = Buffer.from(
    JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', predicateType, subject: [{ digest: { sha256: subject.digest.slice(7) } }], predicate: {} }),
  );
  const bundle = Buffer.from(JSON.stringify({ mediaType: SIGSTORE_BUNDLE, dsseEnvelope: dsseEnvelope(statement, privateKey) }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIGSTORE_BUNDLE,
      config: { mediaType: OCI_EMPTY, digest: sha256Digest(EMPTY), size: 2, data: 'e30=' },
      layers: [{ mediaType: SIGSTORE_BUNDLE, digest: sha256Digest(bundle), size: bundle.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: {
        'dev.sigstore.bundle.content': 'dsse-envelope',
        'dev.sigstore.bundle.predicateType': predicateType,
        'org.opencontainers.image.created': '2026-01-01T00:00:00Z',
      },
    }),
  );
  return {
    ...builtArtifact(manifest, [EMPTY, bundle]),
  };
}

/** An OCI image manifest and its blobs, by digest. */
function builtArtifact(manifest: Buffer, blobs: Buffer[]): BuiltArtifact {
  return { manifest, digest: sha256Digest(manifest), mediaType: OCI_MANIFEST, blobs: new Map(blobs.map((b) => [sha256Digest(b), b])) };
}

/** Checks a cosign signature manifest as cosign verify would: the payload names `digest` and the signature verifies. */
export function checkCosignSignature(manifest: Buffer, payload: Buffer, digest: string, publicKey: KeyObject): boolean {
  const m = JSON.parse(manifest.toString('utf8')) as { layers: Array<{ digest: string; annotations?: Record<string, string> }> };
  const layer = m.layers[0]!;
  if (layer.digest !== sha256Digest(payload)) return false;
  const body = JSON.parse(payload.toString('utf8')) as { critical: { image: { 'docker-manifest-digest': string } } };
  if (body.critical.image['docker-manifest-digest'] !== digest) return false;
  return verify('sha256', payload, publicKey, Buffer.from(layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION] ?? '', 'base64'));
}

/** An SPDX SBOM as `oras attach --artifact-type application/spdx+json` writes it: empty config, one layer, `subject`. */
export function spdxSbom(subject: Descriptor, name = 'app'): BuiltArtifact {
  const sbom = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name, packages: [] }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SPDX_JSON,
      config: { mediaType: OCI_EMPTY, digest: sha256Digest(EMPTY), size: 2, data: 'e30=' },
      layers: [{ mediaType: SPDX_JSON, digest: sha256Digest(sbom), size: sbom.length, annotations: { 'org.opencontainers.image.title': 'sbom.spdx.json' } }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    }),
  );
  return {
    ...builtArtifact(manifest, [EMPTY, sbom]),
  };
}

/** The descriptor a referrers listing gives for an artifact. */
export function referrerEntry(a: BuiltArtifact): Descriptor {
  const m = JSON.parse(a.manifest.toString('utf8')) as { artifactType?: string; annotations?: Record<string, string> };
  return {
    mediaType: a.mediaType,
    digest: a.digest,
    size: a.manifest.length,
    artifactType: m.artifactType!,
    ...(m.annotations ? { annotations: m.annotations } : {}),
  };
}

/** Pushes an artifact's blobs (monolithic uploads) and its manifest under `reference` (a tag, or its digest). */
export async function pushArtifact(reg: RegistryEndpoint, repository: string, a: BuiltArtifact, reference: string = a.digest): Promise<void> {
  for (const [digest, bytes] of a.blobs) await pushBlob(reg, repository, digest, bytes);
  await putManifest(reg, repository, reference, a.manifest, a.mediaType);
}

/** Writes (or replaces) the tag-schema fallback index of `subject` listing `entries`. */
export async function putFallbackIndex(reg: RegistryEndpoint, repository: string, subject: string, entries: Descriptor[]): Promise<Buffer> {
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
  await putManifest(reg, repository, subject.replace(':', '-'), index, OCI_INDEX);
  return index;
}

export async function pushBlob(reg: RegistryEndpoint, repository: string, digest: string, bytes: Buffer): Promise<void> {
  const start = await registryFetch(reg, `/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await start.body?.cancel();
  if (start.status !== 202) throw new Error(`starting an upload to ${repository}: ${start.status}`);
  const location = new URL(start.headers.get('location')!, reg.url);
  location.searchParams.set('digest', digest);
  const put = await registryFetch(reg, `${location.pathname}${location.search}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await put.body?.cancel();
  if (put.status !== 201) throw new Error(`uploading ${digest} to ${repository}: ${put.status}`);
}

export async function putManifest(reg: RegistryEndpoint, repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
  const res = await registryFetch(reg, `/v2/${repository}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`putting manifest ${reference} to ${repository}: ${res.status} ${body}`);
}

/** A manifest's bytes as the registry serves them, or undefined when it has none. */
export async function fetchManifest(reg: RegistryEndpoint, repository: string, reference: string): Promise<Buffer | undefined> {
  const res = await registryFetch(reg, `/v2/${repository}/manifests/${reference}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`fetching manifest ${reference} of ${repository}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

export async function fetchBlob(reg: RegistryEndpoint, repository: string, digest: string): Promise<Buffer | undefined> {
  const res = await registryFetch(reg, `/v2/${repository}/blobs/${digest}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  return Buffer.from(await res.arrayBuffer());
}
