/**
 * `ferry.json`, the bundle's metadata (DESIGN.md section 2): versioned and
 * validated with zod. Written with a fixed key order so that the same inputs
 * give the same bytes; the bundle id hashes these bytes.
 */

import { isDigest, usageError } from '@ferry/oci-client';
import { z } from 'zod';

/**
 * Version 2 leaves charts and other artifacts unnamed in index.json (containerd
 * would name and unpack them); ferry.json names them. Version 1 is still read.
 */
export const FORMAT_VERSION = 2;

const digest = z.string().refine(isDigest, { message: 'not a sha256/sha512 digest' });

/** A signature, SBOM or attestation carried with an image (a manifest like any other in blobs/). */
export const bundleReferrerSchema = z.object({
  digest,
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  artifactType: z.string().nullable(),
  kind: z.enum(['signature', 'attestation', 'sbom', 'other']),
  /** The manifest it refers to: the image's, one of its children, or another referrer. */
  subject: digest,
  /** cosign's tag for it (`sha256-<hex>.sig`), written as a tag on load; null for an OCI 1.1 referrer. */
  tag: z.string().nullable(),
});

/**
 * How an image's referrers were looked for, whatever was found, so that "none
 * found" reads differently from "not looked for".
 */
export const referrerSearchSchema = z.object({
  /** `--referrers`: none, signatures or all. */
  mode: z.enum(['none', 'signatures', 'all']),
  /** `--referrers-type`: only these artifactTypes were carried; null for any. */
  types: z.array(z.string()).nullable(),
  /** Manifests whose referrers were asked for: the image's and, three levels deep, its referrers'. */
  subjects: z.number().int().nonnegative(),
  /** How OCI 1.1 referrers were listed: the registry's referrers API, or its `sha256-<hex>` fallback tag. */
  listing: z.array(z.enum(['referrers-api', 'fallback-tag'])),
  /** cosign's tags looked for beside each (`.sig`, `.att`, `.sbom`). */
  cosignTags: z.array(z.string()),
});

export const bundleImageSchema = z.object({
  /** The full normalized source reference, as in index.json's ref.name annotation. */
  ref: z.string().min(1),
  /** The root digest at the source (an index before platform filtering). */
  upstreamDigest: digest,
  /** The root digest in the bundle (differs from upstream only when filtered). */
  digest,
  mediaType: z.string(),
  /** "linux/amd64", … in index order; empty for artifacts without platforms. */
  platforms: z.array(z.string()),
  /** Bytes of every manifest, config and layer this image references (shared ones counted), its referrers' included. */
  size: z.number().int().nonnegative(),
  /** Its referrers carried, each after its subject; absent when none (and in bundles of earlier ferry). */
  referrers: z.array(bundleReferrerSchema).optional(),
  /** How they were looked for; absent in bundles of earlier ferry (not recorded). */
  referrerSearch: referrerSearchSchema.optional(),
});

export const bundleChartSchema = z.object({
  /** Its name in index.json (`org.opencontainers.image.ref.name`): `charts/<name>:<tag>`. */
  ref: z.string().min(1),
  name: z.string().min(1),
  version: z.string().min(1),
  appVersion: z.string().nullable(),
  /** Where it was read: the chart directory or `.tgz` as given, or `oci://REGISTRY/REPO:TAG`. */
  source: z.string(),
  /** The manifest digest at the registry for a chart pulled from one (the bundle keeps it); else null. */
  upstreamDigest: digest.nullable(),
  /** The chart's manifest digest in the bundle (a Helm OCI artifact, as `helm push` stores it). */
  digest,
  mediaType: z.string(),
  /** Bytes of its manifest, config and chart layer. */
  size: z.number().int().nonnegative(),
  /**
   * Every image discovery found in it, sorted; `packed` says whether the bundle carries it. `usage` is its class:
   * used (a pod image of the render), runtime (named by the render for an operator's pods), declared (Chart.yaml
   * annotations), optional (only with non-default values); bundles of earlier ferry have used and optional only.
   */
  images: z.array(
    z.object({
      ref: z.string().min(1),
      usage: z.enum(['used', 'runtime', 'declared', 'optional']),
      packed: z.boolean(),
      /** Used only by `helm test` pods. */
      testHook: z.literal(true).optional(),
    }),
  ),
  /** `pack --skip-image`: each pattern and the chart's images it left out (absent when none was given). */
  skipped: z.array(z.object({ pattern: z.string().min(1), references: z.array(z.string().min(1)) })).optional(),
});

export const ferryJsonSchema = z.object({
  formatVersion: z.union([z.literal(1), z.literal(FORMAT_VERSION)]),
  /** "ferry 0.1.0" */
  tool: z.string(),
  /** RFC 3339 UTC; SOURCE_DATE_EPOCH when set. */
  created: z.string(),
  inputs: z.object({
    /** The references the user named (the charts' images are in `charts[].images`). */
    references: z.array(z.string()),
    /** The charts the user named, as given (spec entries relative to the spec resolved). */
    charts: z.array(z.string()),
    platforms: z.array(z.string()).nullable(),
    /** `pack --docker-platform`: the platform manifest.json carries; null for the default (format 1: absent). */
    dockerPlatform: z.string().nullable().default(null),
  }),
  images: z.array(bundleImageSchema),
  totals: z.object({
    images: z.number().int().nonnegative(),
    /** Distinct blobs carried in this file (manifests included). */
    blobs: z.number().int().nonnegative(),
    /** Bytes of the distinct blobs carried. */
    bytes: z.number().int().nonnegative(),
    /** Sum of the images' (and charts') sizes: what the bytes would be without de-duplication. */
    logicalBytes: z.number().int().nonnegative(),
  }),
  /** For a delta bundle: the bundle it builds on and the blobs it relies on without carrying. */
  base: z
    .object({
      id: digest,
      reliesOn: z.array(z.object({ digest, size: z.number().int().nonnegative() })),
    })
    .nullable(),
  /** The Helm charts carried, in index.json order (after the images). */
  charts: z.array(bundleChartSchema),
});

export type FerryJson = z.infer<typeof ferryJsonSchema>;
export type BundleImage = z.infer<typeof bundleImageSchema>;
export type BundleReferrer = z.infer<typeof bundleReferrerSchema>;
export type BundleReferrerSearch = z.infer<typeof referrerSearchSchema>;
export type BundleChart = z.infer<typeof bundleChartSchema>;

/** Serializes with the schema's key order (JSON.stringify keeps insertion order). */
export function serializeFerryJson(doc: FerryJson): Buffer {
  const ordered: FerryJson = ferryJsonSchema.parse(doc);
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`);
}

/** Parses and validates ferry.json bytes; throws with the path of the first bad field. */
export function parseFerryJson(bytes: Uint8Array): FerryJson {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw usageError('ferry.json is not valid JSON; this file is not a ferry bundle or it is damaged');
  }
  const r = ferryJsonSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw usageError(`ferry.json is not valid at ${issue.path.join('.') || '(document)'}: ${issue.message}`);
  }
  return r.data;
}
