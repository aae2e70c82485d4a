/**
 * The public API of @ferry/bundler: pack, load, copy, verify and inspect, the
 * places they read and write, and the bundle's formats. The chart engine is a
 * separate entry point (`@ferry/bundler/charts`), loaded only when used.
 */
export {
  type AccessOptions,
  type MirrorAccess,
  type MirrorConfigFiles,
  type MirrorImage,
  mirrorAccess,
  mirrorConfigs,
  mirrorImages,
  writeMirrorConfigs,
} from './cluster/mirror-config.js';
export { type CopyRequest, type CopyResult, copyImage } from './copy-image.js';
export { type BundleChart, type BundleImage, type FerryJson, FORMAT_VERSION } from './format/ferry-json.js';
export { gatherPackInputs, type PackInputs } from './inputs.js';
export { type InspectChart, type InspectImage, type InspectReport, inspectBundle } from './inspect.js';
export { HarborProjects } from './load/harbor.js';
export { type LoadedChart, type LoadedImage, type LoadOptions, type LoadResult, load } from './load/load.js';
export { TargetMapper } from './load/mapping.js';
export { mappingFormat, writeMapping } from './load/mapping-out.js';
export { type PackOptions, type PackResult, pack, sourceDateEpoch } from './pack.js';
export { type BundleChartRef, type BundleImageRef, type BundleKind, BundleReader, type OpenBundleOptions, openBundle } from './places/bundle-reader.js';
export { BundleWriter } from './places/bundle-writer.js';
export { MemoryPlace } from './places/memory.js';
export { RegistryPlace } from './places/registry.js';
export { indexTar } from './places/tar-index.js';
export { Htpasswd } from './serve/auth.js';
export { buildContent, type ServedContent, type ServedRepo } from './serve/content.js';
export { type AccessEntry, BundleServer, type ServeOptions } from './serve/server.js';
export { parseSize } from './split-files.js';
export { type AgainstReport, type AgainstRow, verifyAgainst } from './trust/against.js';
export { checkSignature, generateKeyPair, loadPrivateKey, loadPublicKey } from './trust/keys.js';
export { type VerifyOptions, type VerifyReport, verifyBundle } from './trust/verify.js';
