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

export type ReferrerKind = 'signature' | 'attestation' | 'sbom' | 'other';

/** artifactTypes that are signatures: cosign's (as an OCI 1.1 referrer) and notation's. */
export const SIGNATURE_TYPES: readonly string[] = ['application/vnd.dev.cosign.artifact.sig.v1+json', 'application/vnd.cncf.notary.signature'];

/** cosign's tag suffixes and the artifactType each stands for (as cosign writes it as a referrer). */
const COSIGN_SUFFIXES: ReadonlyArray<{ suffix: string; kind: ReferrerKind; artifactType: string }> = [
  { suffix: 'sig', kind: 'signature', artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' },
  { suffix: 'att', kind: 'attestation', artifactType: 'application/vnd.dsse.envelope.v1+json' },
  { suffix: 'sbom', kind: 'sbom', artifactType: 'application/vnd.dev.cosign.artifact.sbom.v1+json' },
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

/** What a referrer is said to be: its artifactType, or for a cosign tag the type its suffix stands for. */
export function referrerArtifactType(link: ReferrerLink): string | undefined {
  if (link.descriptor.artifactType) return link.descriptor.artifactType;
  const suffix = link.tag?.slice(link.tag.lastIndexOf('.') + 1);
  return COSIGN_SUFFIXES.find((s) => s.suffix === suffix)?.artifactType;
}

export function referrerKind(link: ReferrerLink): ReferrerKind {
  const suffix = link.tag?.slice(link.tag.lastIndexOf('.') + 1);
  const cosign = COSIGN_SUFFIXES.find((s) => s.suffix === suffix);
  if (link.tag !== undefined && cosign) return cosign.kind;
  const type = link.descriptor.artifactType ?? '';
  if (SIGNATURE_TYPES.includes(type)) return 'signature';
  if (/spdx|cyclonedx|sbom/i.test(type)) return 'sbom';
  if (/in-toto|intoto|dsse|attestation|provenance|vuln|vex/i.test(type)) return 'attestation';
  return 'other';
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
