// The test kit, one import for tests and the benchmark: `import { startRegistry, startMemoryRegistry, seedImage } from './harness/index.js'`.

export * from './fault-proxy.js';
export * from './harbor-fake.js';
export * from './helm.js';
export * from './images.js';
export { makeLayer, seededBytes, seededChunks, sha256Digest, TAR_BLOCK, tar, tarHeader } from './layer.js';
export * from './media-types.js';
export * from './memory-registry/index.js';
export { makeTempDir, removeTempDir, stopChild, trackChild } from './process.js';
export * from './registry.js';
export * from './signatures.js';
export * from './token-server.js';
