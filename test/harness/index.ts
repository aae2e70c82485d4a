// One import for integration tests: `import { startRegistry, seedImage } from '../harness/index.js'`.

export * from './fault-proxy.js';
export * from './harbor-fake.js';
export * from './images.js';
export { seededBytes, sha256Digest } from './layer.js';
export * from './registry.js';
export * from './token-server.js';
