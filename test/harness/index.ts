// One import for integration tests: `import { startRegistry, seedImage } from '../harness/index.js'`.
export * from './registry.js';
export * from './token-server.js';
export * from './fault-proxy.js';
export * from './images.js';
export { sha256Digest, seededBytes } from './layer.js';
export * from './harbor-fake.js';
