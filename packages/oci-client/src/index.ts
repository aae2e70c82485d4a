/**
 * The public API of @ferry/oci-client: the registry client, the copy engine and
 * its one graph walk, and the OCI types they speak. Anything not named here is
 * internal to the package.
 */

export type { MinRate } from './bounded-read.js';
export { OciClient, type OciClientOptions } from './client.js';
export { CopyEngine, type CopyEngineOptions, type CopyEvent, type CopyImageOptions, type CopyStats, SEND_WITHOUT_ASKING } from './copy/engine.js';
export {
  ATTESTATION_OF,
  configPlatform,
  type GraphNode,
  indexChildPlatform,
  isAttestation,
  isManifestRole,
  MAX_INDEX_DEPTH,
  MAX_REFERRER_DEPTH,
  type NodeRole,
  type WalkOptions,
  walkGraph,
} from './copy/graph.js';
export {
  type BlobMounter,
  type BlobOutcome,
  type BlobReadOptions,
  canMount,
  type ImageSink,
  type ImageSource,
  type OpenBlob,
  type RegistryLocation,
} from './copy/place.js';
export { type ImagePlan, type PlanOptions, planImage, planManifests, type ReferrerPlan, type ReferrerSearch } from './copy/plan.js';
export { createPool, DEFAULT_JOBS, type Pool } from './copy/pool.js';
export {
  cosignSuffixes,
  cosignTags,
  fallbackTag,
  mergeFallbackIndex,
  needsManifestToClassify,
  REFERRER_MODES,
  type ReferrerKind,
  type ReferrerLink,
  type ReferrerLookup,
  type ReferrerMode,
  referrerArtifactType,
  referrerDescriptor,
  referrerKind,
  SIGNATURE_TYPES,
  wantsReferrer,
} from './copy/referrers.js';
export { type Credential, CredentialStore, type CredentialStoreOptions, dockerConfigPath, registryOfAuthKey } from './credentials.js';
export { type DigestAlgorithm, DigestVerifier, digestOf, isDigest, parseDigest, verifyBytes } from './digest.js';
export { abortReason, type ErrorDetails, type ErrorKind, type ErrorOrigin, FerryError, isFerryError, usageError } from './errors.js';
export {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  indexSchema,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MediaType,
  normalizeMediaType,
  type ParsedManifest,
  parseManifest,
  referencedDescriptors,
} from './manifest.js';
export {
  formatPlatform,
  normalizePlatform,
  type Platform,
  parsePlatform,
  parsePlatformList,
  platformFromConfig,
  platformFromDescriptor,
  platformMatches,
} from './platform.js';
export {
  DOCKER_HUB,
  formatReference,
  isLoopbackHost,
  normalizeRegistry,
  parseReference,
  parseRegistryTarget,
  type Reference,
  withDigest,
  withTag,
} from './reference.js';
export { type BlobRef, type PushBlobOptions, type PushResult, RegistryClient } from './registry.js';
export { DEFAULT_RETRY_POLICY, isTransientNetworkError, type RetryPolicy } from './retry-policy.js';
export {
  encodeTarHeader,
  readTarEntries,
  resolveTarLink,
  safeTarName,
  TAR_BLOCK_SIZE,
  TAR_END_OF_ARCHIVE,
  type TarEntry,
  type TarFile,
  TarFormatError,
  type TarHeader,
  type TarWalkOptions,
  tarEntriesOf,
  tarPadding,
} from './tar.js';
export { describeNetworkError, header, Transport, type TransportOptions, type TransportResponse, toNetworkError } from './transport.js';
