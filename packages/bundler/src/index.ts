export * from './format/ferry-json.js';
export * from './format/tar.js';
export * from './layout.js';
export * from './bundle-writer.js';
export * from './inputs.js';
export * from './pack.js';
