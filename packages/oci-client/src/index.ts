export * from './auth.js';
export * from './client.js';
export * from './copy/engine.js';
export * from './copy/places.js';
export * from './copy/plan.js';
export * from './credentials.js';
export * from './digest.js';
export * from './errors.js';
export * from './manifest.js';
export * from './platform.js';
export * from './reference.js';
export * from './registry.js';
export {
  encodeTarHeader,
  readTarEntries,
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
export * from './transport.js';
