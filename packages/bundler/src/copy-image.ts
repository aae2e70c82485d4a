/**
 * `copy`: one image, every platform (or a filtered few), registry to registry,
 * digests kept; blobs are mounted when both repositories are in one registry.
 * Its referrers (cosign signatures, SBOMs, attestations) go with it by default.
 * The library form of `ferry copy` (crane's `copy.go` over `remote`).
 */
import {
  CopyEngine,
  type CopyEvent,
  type CopyStats,
  formatReference,
  type OciClient,
  type Platform,
  parseReference,
  planImage,
  type ReferrerMode,
  usageError,
} from '@ferry/oci-client';
import { RegistryPlace } from './places/registry.js';

export interface CopyRequest {
  client: OciClient;
  source: string;
  destination: string;
  platforms?: Platform[] | undefined;
  /** Which referrers go with the image (default all). */
  referrers?: ReferrerMode | undefined;
  /** Only referrers of these artifactTypes. */
  referrersType?: string[] | undefined;
  jobs?: number | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((e: CopyEvent) => void) | undefined;
  /** Called once the image is planned, before any blob moves. */
  onPlanned?: ((p: { blobs: number; bytes: number }) => void) | undefined;
  log?: ((line: string) => void) | undefined;
}

export interface CopyResult {
  source: string;
  /** `REGISTRY/REPO[:TAG]@DIGEST`. */
  destination: string;
  digest: string;
  upstreamDigest: string;
  mediaType: string;
  platforms: string[];
  /** The referrers carried, each after its subject. */
  referrers: Array<{ digest: string; subject: string; artifactType: string | undefined; tag: string | undefined }>;
  stats: CopyStats;
}

export async function copyImage(req: CopyRequest): Promise<CopyResult> {
  const from = parseReference(req.source);
  const to = parseReference(req.destination);
  const source = new RegistryPlace(req.client.registry(from.registry), from.repository);
  const sink = new RegistryPlace(req.client.registry(to.registry), to.repository).forWriting();
  const plan = await planImage(source, from.digest ?? from.tag!, {
    platforms: req.platforms,
    referrers: req.referrers ?? 'all',
    referrersType: req.referrersType,
  });
  if (plan.filtered) {
    req.log?.(`filtered ${formatReference(from)} to ${plan.platforms.join(', ')}: new index ${plan.root.digest} (upstream ${plan.upstreamDigest})`);
  }
  if (to.digest && !to.tag && to.digest !== plan.root.digest) {
    throw usageError(`destination ${req.destination} names digest ${to.digest}, but the copied image is ${plan.root.digest}`);
  }
  req.onPlanned?.({ blobs: plan.blobs.length, bytes: plan.blobs.reduce((n, b) => n + b.size, 0) });
  const engine = new CopyEngine({ jobs: req.jobs, signal: req.signal, onEvent: req.onEvent });
  await engine.copy(source, sink, plan, { tag: to.tag });
  return {
    source: formatReference(from),
    destination: `${to.registry}/${to.repository}${to.tag ? `:${to.tag}` : ''}@${plan.root.digest}`,
    digest: plan.root.digest,
    upstreamDigest: plan.upstreamDigest,
    mediaType: plan.root.mediaType,
    platforms: plan.platforms,
    referrers: plan.referrers.map((r) => ({ digest: r.root.digest, subject: r.subject, artifactType: r.artifactType, tag: r.tag })),
    stats: engine.stats,
  };
}
