/**
 * Indexing a bundle tar without extracting it (DESIGN.md "Reading fast"): walk
 * the headers with positional reads of 512-byte blocks, skip the data, and
 * remember where each entry's data starts. Blobs are then read by offset.
 *
 * Safe reading: only the names a bundle uses are indexed (`oci-layout`,
 * `index.json`, `ferry.json`, `ferry.sig`, `blobs/<alg>/<hex>`); other files are
 * ignored; absolute paths, `..`, links, devices, FIFOs and duplicates of a used
 * name are refused. Nothing is ever written to disk, but a bundle that would be
 * unsafe to extract is refused all the same: other tools may extract it.
 */
import { open } from 'node:fs/promises';
import { usageError } from '@ferry/oci-client';
import type { PositionalFile } from '../volumes.js';

const BLOCK = 512;
/** pax and GNU long-name headers are a few hundred bytes; refuse absurd ones. */
const MAX_META_SIZE = 1024 * 1024;

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
export const BUNDLE_ROOT_FILES: readonly string[] = ['oci-layout', 'index.json', 'ferry.json', 'ferry.sig'];

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

/**
 * `./a//b/` -> `a/b`. Returns a refusal reason for absolute names and `..`
 * components, or `''` for the root directory itself.
 */
export function normalizeEntryName(raw: string): { name: string } | { refuse: string } {
  if (raw.includes('\0')) return { refuse: 'has a NUL character in its name' };
  if (raw.startsWith('/')) return { refuse: 'has an absolute path' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { refuse: 'escapes the bundle' };
  return { name: parts.join('/') };
}

const TYPE_REFUSALS: Record<string, string> = {
  '1': 'is a hard link',
  '2': 'is a symbolic link',
  '3': 'is a character device',
  '4': 'is a block device',
  '6': 'is a FIFO',
};

function refuse(label: string, name: string, why: string): Error {
  return usageError(`${label} is not a safe bundle: entry ${JSON.stringify(name)} ${why}`);
}

function truncated(label: string, detail: string): Error {
  return usageError(`${label} is truncated: ${detail}; copy the file again`);
}

/** A NUL-terminated string field. */
function str(b: Buffer, off: number, len: number): string {
  const field = b.subarray(off, off + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** An octal numeric field, or GNU base-256 when the high bit of the first byte is set. */
function num(b: Buffer, off: number, len: number): number | undefined {
  const first = b[off]!;
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[off + i]!;
      if (!Number.isSafeInteger(v)) return undefined;
    }
    return v;
  }
  const s = b
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^[ ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = num(b, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed; // some old tars summed signed bytes
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** pax records: `"%d %s=%s\n"`, the length counting the whole record. */
function parsePax(data: Buffer, label: string, at: number): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, i);
    const len = space < 0 ? NaN : Number(data.toString('latin1', i, space));
    if (!Number.isInteger(len) || len <= space - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) {
      throw usageError(`${label} is damaged: the pax extended header at byte ${at} is malformed`);
    }
    const record = data.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq < 0) throw usageError(`${label} is damaged: the pax extended header at byte ${at} is malformed`);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
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
  const fh = typeof file === 'string' ? await open(file, 'r') : file;
  const label = opts.label ?? (typeof file === 'string' ? file : 'the bundle');
  try {
    return await walk(fh, label);
  } finally {
    if (typeof file === 'string') await fh.close();
  }
}

async function walk(fh: PositionalFile, label: string): Promise<TarIndex> {
  const fileSize = (await fh.stat()).size;
  const entries: TarIndex = new Map();
  const seenDirs = new Set<string>();
  const header = Buffer.alloc(BLOCK);

  const readExactly = async (buf: Buffer, position: number): Promise<number> => {
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  };

  let pos = 0;
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let first = true;

  for (;;) {
    if (pos >= fileSize) {
      if (first) throw usageError(`${label} is not a bundle (not a tar archive)`);
      throw truncated(label, `it ends at byte ${fileSize} without the tar end-of-archive marker`);
    }
    const got = await readExactly(header, pos);
    if (got < BLOCK) {
      if (first) throw usageError(`${label} is not a bundle (not a tar archive)`);
      throw truncated(label, `the tar header at byte ${pos} is cut off at byte ${fileSize}`);
    }
    if (isZero(header)) {
      // End of archive: two zero blocks, though one is accepted (as GNU tar does).
      if (pax !== undefined || longName !== undefined) {
        throw truncated(label, `an extended header at the end is not followed by its entry`);
      }
      return entries;
    }
    if (!checksumOk(header)) {
      if (first) throw usageError(`${label} is not a bundle (not a tar archive)`);
      throw usageError(`${label} is damaged: the tar header at byte ${pos} has a bad checksum`);
    }
    first = false;

    const typeflag = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
    const magic = header.toString('latin1', 257, 263);
    let rawName = str(header, 0, 100);
    if (magic === 'ustar\0') {
      // POSIX ustar: a prefix field (GNU tar uses that area for other things).
      const prefix = str(header, 345, 155);
      if (prefix !== '') rawName = `${prefix}/${rawName}`;
    }
    let size = num(header, 124, 12);
    if (size === undefined) {
      throw usageError(`${label} is damaged: the tar header at byte ${pos} has an unreadable size`);
    }
    const dataOffset = pos + BLOCK;

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_SIZE) {
        throw usageError(`${label} is damaged: the extended header at byte ${pos} claims ${size} bytes`);
      }
      if (dataOffset + size > fileSize) {
        throw truncated(label, `the extended header at byte ${pos} runs past the end of the file (byte ${fileSize})`);
      }
      const data = Buffer.alloc(size);
      await readExactly(data, dataOffset);
      if (typeflag === 'x') pax = parsePax(data, label, pos);
      else if (typeflag === 'L') longName = str(data, 0, data.length);
      // 'g' (global pax) and 'K' (GNU long link name) carry nothing a bundle uses.
      pos = dataOffset + roundUp(size);
      continue;
    }

    // An ordinary entry: extended headers before it override its name and size.
    const paxPath = pax?.get('path');
    if (paxPath !== undefined) rawName = paxPath;
    else if (longName !== undefined) rawName = longName;
    const paxSize = pax?.get('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) {
        throw usageError(`${label} is damaged: entry ${JSON.stringify(rawName)} has an invalid pax size "${paxSize}"`);
      }
      size = Number(paxSize);
    }
    pax = undefined;
    longName = undefined;

    const norm = normalizeEntryName(rawName);
    if ('refuse' in norm) throw refuse(label, rawName, norm.refuse);
    const name = norm.name;
    const typeRefusal = TYPE_REFUSALS[typeflag];
    if (typeRefusal !== undefined) throw refuse(label, rawName, typeRefusal);

    if (typeflag === '5') {
      if (entries.has(name)) throw refuse(label, rawName, 'is a directory where the bundle has a file');
      if (name !== '' && classifyName(name) === 'use') throw refuse(label, rawName, 'is a directory where a file is expected');
      seenDirs.add(name);
      // Directories carry no data (a GNU dumpdir 'D' would, but is refused below).
      pos = dataOffset + roundUp(size);
      continue;
    }
    if (typeflag !== '0' && typeflag !== '7') {
      throw refuse(label, rawName, `has an unsupported tar entry type "${typeflag}"`);
    }
    if (dataOffset + size > fileSize) {
      throw truncated(label, `entry ${JSON.stringify(name)} needs ${size} bytes from byte ${dataOffset}, but the file ends at byte ${fileSize}`);
    }
    const cls = classifyName(name);
    if (typeof cls === 'object') throw refuse(label, rawName, cls.refuse);
    if (cls === 'use') {
      if (entries.has(name)) throw refuse(label, rawName, 'appears more than once');
      if (seenDirs.has(name)) throw refuse(label, rawName, 'is a file where the bundle has a directory');
      entries.set(name, { name, offset: dataOffset, size });
    }
    pos = dataOffset + roundUp(size);
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}
