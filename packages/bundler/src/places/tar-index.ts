/**
 * Indexing a bundle tar without extracting it (DESIGN.md "Reading fast"): the
 * tar walk of @ferry/oci-client reads the headers with positional reads and
 * skips the data; this remembers where each entry's data starts. Blobs are then
 * read by offset.
 *
 * Safe reading: only the names a bundle uses are indexed (`oci-layout`,
 * `index.json`, `ferry.json`, `ferry.sig`, `manifest.json`, `blobs/<alg>/<hex>`); other files are
 * ignored; what the tar safety rule refuses (absolute paths, `..`, hard links,
 * devices, FIFOs, symbolic links that leave the archive or name no regular
 * file of it) and duplicates of a used name are refused. A symbolic link that
 * stays inside is indexed as the file it names (docker archives link repeated layers). Nothing is ever written to disk, but a bundle that would be
 * unsafe to extract is refused all the same: other tools may extract it.
 */
import { readTarEntries, resolveTarLink, TarFormatError, usageError, type TarEntry as WalkedEntry } from '@ferry/oci-client';
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
  /**
   * Index every file of the archive, not only the names a bundle uses (a docker
   * archive names its files in manifest.json); then a name that appears twice is refused.
   */
  all?: boolean;
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
  // Every file and link, for links to be resolved once the walk has seen their targets.
  const walked = new Map<string, WalkedEntry>();
  const links: WalkedEntry[] = [];
  const twice = new Set<string>();
  try {
    for await (const e of readTarEntries(file, { container: 'the bundle', symlinks: true })) {
      const { name, rawName } = e;
      if (e.type !== 'directory') {
        if (walked.has(name)) twice.add(name);
        walked.set(name, e);
        if (e.type === 'symlink') links.push(e);
      }
      if (e.type === 'directory') {
        if (entries.has(name)) throw refuse(label, rawName, 'is a directory where the bundle has a file');
        if (name !== '' && classifyName(name) === 'use') throw refuse(label, rawName, 'is a directory where a file is expected');
        seenDirs.add(name);
        continue;
      }
      const cls = opts.all ? 'use' : classifyName(name);
      if (typeof cls === 'object') throw refuse(label, rawName, cls.refuse);
      if (cls === 'use' && e.type === 'file') {
        if (entries.has(name)) throw refuse(label, rawName, 'appears more than once');
        if (seenDirs.has(name)) throw refuse(label, rawName, 'is a file where the bundle has a directory');
        entries.set(name, { name, offset: e.offset, size: e.size });
      }
    }
    for (const link of links) {
      const target = resolveTarLink(link, walked, 'the bundle');
      if (twice.has(target.name)) throw refuse(label, link.rawName, `is a symbolic link to ${JSON.stringify(target.name)}, which appears more than once`);
      const cls = opts.all ? 'use' : classifyName(link.name);
      if (typeof cls === 'object') throw refuse(label, link.rawName, cls.refuse);
      if (cls !== 'use') continue;
      if (twice.has(link.name)) throw refuse(label, link.rawName, 'appears more than once');
      entries.set(link.name, { name: link.name, offset: target.offset, size: target.size });
    }
  } catch (e) {
    throw e instanceof TarFormatError ? bundleError(label, e) : e;
  }
  return entries;
}
