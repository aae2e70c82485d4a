// The test kit, one import for tests and the benchmark: `import { startRegistry, startMemoryRegistry, seedImage } from './harness/index.js'`.

export * from './fault-proxy.js';
export * from './harbor-fake.js';
export * from './images.js';
export { seededBytes, sha256Digest } from './layer.js';
export * from './media-types.js';
export * from './memory-registry/index.js';
export * from './registry.js';
export * from './token-server.js';
