/**
 * Artifacts that describe an image from outside it: OCI 1.1 referrers (manifests
 * whose `subject` is the image) and cosign's tag convention (`sha256-<hex>.sig`,
 * `.att`, `.sbom` beside the image). Signatures, SBOMs and attestations travel as
 * these, so what counts as which, and how a registry without the referrers API
 * lists them (the tag-schema fallback index), is written here once.
 */
import { Buffer } from 'node:buffer';
import { parseDigest } from '../digest.js';
import { type Descriptor, MediaType, type ParsedManifest, parseManifest } from '../manifest.js';

/** Which referrers a copy carries: none, only signatures, or all (signatures, SBOMs, attestations…). */
export type ReferrerMode = 'none' | 'signatures' | 'all';
export const REFERRER_MODES: readonly ReferrerMode[] = ['none', 'signatures', 'all'];

/** How a referrer was found: by the referrers API (or its fallback index), or at a cosign tag. */
export interface ReferrerLink {
  descriptor: Descriptor;
  /** The cosign tag it is stored under (`sha256-<hex>.sig`); undefined for an OCI 1.1 referrer. */
  tag?: string | undefined;
}

/** How a place looked for one manifest's referrers, so a bundle can tell "none found" from "not looked for". */
export interface ReferrerLookup {
  /** How OCI 1.1 referrers were listed: the registry's referrers API, or its tag-schema fallback tag `sha256-<hex>`. */
  listing: 'referrers-api' | 'fallback-tag';
  /** cosign's tags looked for beside it (`sha256-<hex>.sig`, …), by suffix. */
  cosignTags: string[];
}

/** cosign's tag suffixes looked for: `.sig`, `.att`, `.sbom`. */
export function cosignSuffixes(): string[] {
  return COSIGN_SUFFIXES.map((s) => `.${s.suffix}`);
}

export type ReferrerKind = 'signature' | 'attestation' | 'sbom' | 'other';

/**
 * The artifactType cosign gives an attachment as an OCI 1.1 referrer: its
 * `ArtifactType(attName)`, `application/vnd.dev.cosign.artifact.<name>.v1+json`.
 */
function cosignArtifactType(name: string): string {
  return `application/vnd.dev.cosign.artifact.${name}.v1+json`;
}

/**
 * Sigstore bundles (cosign 3, `--new-bundle-format`): one artifactType for
 * signatures and attestations alike, told apart by the predicate annotation;
 * cosign's own signatures carry the predicate below.
 */
const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle';
export const SIGSTORE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** artifactTypes that are signatures: cosign's (as an OCI 1.1 referrer) and notation's. */
export const SIGNATURE_TYPES: readonly string[] = [cosignArtifactType('sig'), 'application/vnd.cncf.notary.signature'];

/**
 * cosign's tag suffixes. `.sig` holds simple-signing payloads, each signed in its
 * layer's `dev.cosignproject.cosign/signature` annotation. `.att` holds DSSE
 * envelopes (`application/vnd.dsse.envelope.v1+json` layers with a `predicateType`
 * annotation and an empty signature annotation: the signature is inside the
 * envelope): attestations, even of an SBOM. `.sbom` holds `cosign attach sbom`'s
 * unsigned SBOM. Only `.sig` is a signature.
 */
const COSIGN_SUFFIXES: ReadonlyArray<{ suffix: string; kind: ReferrerKind }> = [
  { suffix: 'sig', kind: 'signature' },
  { suffix: 'att', kind: 'attestation' },
  { suffix: 'sbom', kind: 'sbom' },
];

/** The tag-schema fallback tag of a subject: `sha256:<hex>` -> `sha256-<hex>`. */
export function fallbackTag(subject: string): string {
  const { algorithm, hex } = parseDigest(subject);
  return `${algorithm}-${hex}`;
}

/** cosign's tags for a subject: `sha256-<hex>.sig`, `.att`, `.sbom`. */
export function cosignTags(subject: string): string[] {
  return COSIGN_SUFFIXES.map((s) => `${fallbackTag(subject)}.${s.suffix}`);
}

function cosignSuffix(link: ReferrerLink) {
  if (link.tag === undefined) return undefined;
  const suffix = link.tag.slice(link.tag.lastIndexOf('.') + 1);
  return COSIGN_SUFFIXES.find((s) => s.suffix === suffix);
}

/** What a referrer is said to be: its artifactType, or for a cosign tag the type cosign gives it as a referrer. */
export function referrerArtifactType(link: ReferrerLink): string | undefined {
  if (link.descriptor.artifactType) return link.descriptor.artifactType;
  const cosign = cosignSuffix(link);
  return cosign ? cosignArtifactType(cosign.suffix) : undefined;
}

export function referrerKind(link: ReferrerLink): ReferrerKind {
  const cosign = cosignSuffix(link);
  if (cosign) return cosign.kind;
  const type = link.descriptor.artifactType ?? '';
  if (SIGNATURE_TYPES.includes(type)) return 'signature';
  if (type.startsWith(SIGSTORE_BUNDLE)) {
    return link.descriptor.annotations?.[SIGSTORE_PREDICATE_ANNOTATION] === COSIGN_SIGN_PREDICATE ? 'signature' : 'attestation';
  }
  if (/spdx|cyclonedx|sbom|syft/i.test(type)) return 'sbom';
  if (/in-toto|intoto|dsse|attestation|provenance|vuln|vex/i.test(type)) return 'attestation';
  return 'other';
}

/**
 * Whether the listing's descriptor is too thin to tell what the referrer is: a
 * Sigstore bundle without its predicate annotation (cosign's own fallback index
 * drops it), whose manifest says it.
 */
export function needsManifestToClassify(link: ReferrerLink): boolean {
  return (
    link.tag === undefined &&
    (link.descriptor.artifactType ?? '').startsWith(SIGSTORE_BUNDLE) &&
    link.descriptor.annotations?.[SIGSTORE_PREDICATE_ANNOTATION] === undefined
  );
}

/** Whether a copy with `mode` (and, when given, only `types`) carries the referrer. */
export function wantsReferrer(link: ReferrerLink, mode: ReferrerMode, types?: readonly string[]): boolean {
  if (mode === 'none') return false;
  if (mode === 'signatures' && referrerKind(link) !== 'signature') return false;
  if (types?.length) {
    const type = referrerArtifactType(link);
    return type !== undefined && types.includes(type);
  }
  return true;
}

/** The descriptor a referrers listing gives for a manifest (OCI distribution-spec 1.1). */
export function referrerDescriptor(m: ParsedManifest): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  const artifactType = m.manifest.artifactType ?? (m.kind === 'image' ? m.manifest.config.mediaType : undefined);
  if (artifactType !== undefined) d.artifactType = artifactType;
  if (m.manifest.annotations && Object.keys(m.manifest.annotations).length > 0) d.annotations = m.manifest.annotations;
  return d;
}

/**
 * The tag-schema fallback index with `add` in it: `existing` (what the registry
 * holds at `sha256-<hex>`, if anything) keeps its entries; undefined when `add`
 * is there already, so a rerun writes nothing.
 */
export function mergeFallbackIndex(existing: ParsedManifest | undefined, add: Descriptor): ParsedManifest | undefined {
  const listed = existing?.kind === 'index' ? existing.manifest.manifests : [];
  if (listed.some((d) => d.digest === add.digest)) return undefined;
  const doc =
    existing?.kind === 'index'
      ? (JSON.parse(Buffer.from(existing.bytes).toString('utf8')) as Record<string, unknown>)
      : { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] };
  doc.manifests = [...((doc.manifests as unknown[]) ?? []), add];
  return parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OCI_INDEX);
}
