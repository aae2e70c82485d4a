/**
 * Indexing a bundle tar without extracting it (DESIGN.md "Reading fast"): the
 * tar walk of @ferry/oci-client reads the headers with positional reads and
 * skips the data; this remembers where each entry's data starts. Blobs are then
 * read by offset.
 *
 * Safe reading: only the names a bundle uses are indexed (`oci-layout`,
 * `index.json`, `ferry.json`, `ferry.sig`, `manifest.json`, `blobs/<alg>/<hex>`); other files are
 * ignored; what the tar safety rule refuses (absolute paths, `..`, links,
 * devices, FIFOs) and duplicates of a used name are refused. Nothing is ever written to disk, but a bundle that would be
 * unsafe to extract is refused all the same: other tools may extract it.
 */
import { readTarEntries, TarFormatError, usageError } from '@ferry/oci-client';
import type { PositionalFile } from '../split-files.js';

export interface TarEntry {
  /** The normalized name, e.g. `blobs/sha256/<hex>`. */
  name: string;
  /** Byte offset of the entry's data in the file. */
  offset: number;
  /** Bytes of data. */
  size: number;
}

/** The used entries of a bundle tar, by normalized name. */
export type TarIndex = Map<string, TarEntry>;

/** The root files of a bundle; everything else it uses is under `blobs/`. */
export const BUNDLE_ROOT_FILES: readonly string[] = ['oci-layout', 'index.json', 'ferry.json', 'ferry.sig', 'manifest.json'];

const BLOB_HEX: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

/**
 * Whether a normalized name is one a bundle uses: `'use'`, `'ignore'` (other
 * tools' files), or a reason to refuse it (a malformed name under a blob directory).
 */
export function classifyName(name: string): 'use' | 'ignore' | { refuse: string } {
  if (BUNDLE_ROOT_FILES.includes(name)) return 'use';
  const parts = name.split('/');
  if (parts[0] !== 'blobs' || parts.length < 3) return 'ignore';
  const alg = parts[1]!;
  const re = BLOB_HEX[alg];
  if (re === undefined) return 'ignore'; // another algorithm's directory: not ours to read
  if (parts.length === 3 && re.test(parts[2]!)) return 'use';
  return {
    refuse: `is not named by a ${alg} digest (blobs/${alg}/ holds only files named by ${re === BLOB_HEX.sha256 ? 64 : 128} lowercase hexadecimal characters)`,
  };
}

function refuse(label: string, name: string, why: string): Error {
  return usageError(`${label} is not a safe bundle: entry ${JSON.stringify(name)} ${why}`);
}

/** A tar the walk could not read, in the bundle's words. */
function bundleError(label: string, e: TarFormatError): Error {
  switch (e.reason) {
    case 'not-tar':
      return usageError(`${label} is not a bundle (not a tar archive)`);
    case 'truncated':
      return usageError(`${label} is truncated: ${e.message}; copy the file again`);
    case 'damaged':
      return usageError(`${label} is damaged: ${e.message}`);
    case 'unsafe':
      return usageError(`${label} is not a safe bundle: ${e.message}`);
  }
}

export interface IndexTarOptions {
  /** How to name the file in messages; the path when given one. */
  label?: string;
}

/**
 * Walks the headers of a tar file and returns the entries a bundle uses.
 * Throws a usage error (exit 2) for anything that is not a tar, is truncated or
 * damaged, or is not safe to read.
 */
export async function indexTar(file: string | PositionalFile, opts: IndexTarOptions = {}): Promise<TarIndex> {
  const label = opts.label ?? (typeof file === 'string' ? file : 'the bundle');
  const entries: TarIndex = new Map();
  const seenDirs = new Set<string>();
  try {
    for await (const e of readTarEntries(file, { container: 'the bundle' })) {
      const { name, rawName } = e;
      if (e.type === 'directory') {
        if (entries.has(name)) throw refuse(label, rawName, 'is a directory where the bundle has a file');
        if (name !== '' && classifyName(name) === 'use') throw refuse(label, rawName, 'is a directory where a file is expected');
        seenDirs.add(name);
        continue;
      }
      const cls = classifyName(name);
      if (typeof cls === 'object') throw refuse(label, rawName, cls.refuse);
      if (cls === 'use') {
        if (entries.has(name)) throw refuse(label, rawName, 'appears more than once');
        if (seenDirs.has(name)) throw refuse(label, rawName, 'is a file where the bundle has a directory');
        entries.set(name, { name, offset: e.offset, size: e.size });
      }
    }
  } catch (e) {
    throw e instanceof TarFormatError ? bundleError(label, e) : e;
  }
  return entries;
}
