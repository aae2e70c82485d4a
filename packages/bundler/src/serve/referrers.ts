/**
 * The referrers API (distribution-spec 1.1): an OCI index of the descriptors of
 * the repository's manifests whose `subject` is the digest, filtered by
 * `artifactType` when asked (and then saying so in OCI-Filters-Applied).
 */
import { type Descriptor, MediaType } from '@ferry/oci-client';
import type { ServedRepo } from './content.js';

export interface ReferrersAnswer {
  body: Buffer;
  filtered: boolean;
}

export function referrersIndex(repo: ServedRepo | undefined, subject: string, artifactType: string | null): ReferrersAnswer {
  let manifests: Descriptor[] = repo?.referrers.get(subject) ?? [];
  const filtered = artifactType !== null && artifactType !== '';
  if (filtered) manifests = manifests.filter((d) => d.artifactType === artifactType);
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  return { body: Buffer.from(JSON.stringify(index)), filtered };
}
