/**
 * Tar, once for the workspace: a bundle and an OCI layout archive are tars, and
 * so is a Helm chart `.tgz` once gunzipped. This module writes headers (POSIX
 * ustar; a pax extended header only where ustar cannot say it), walks headers
 * (ustar, pax and GNU long names, octal and base-256 sizes) and holds the one
 * rule for which entries are safe to read: no absolute paths, no `..`, no NUL,
 * no hard links, devices or FIFOs, and symbolic links only where the caller
 * resolves them inside the archive (resolveTarLink: to a regular file entry,
 * never out of the archive, never to another link). The walk never reads entry data; callers read it
 * by offset, so a multi-gigabyte bundle is indexed with a few positional reads.
 */
import { open } from 'node:fs/promises';

export const TAR_BLOCK_SIZE = 512;
/** The end of an archive: two zero blocks. */
export const TAR_END_OF_ARCHIVE = Buffer.alloc(2 * TAR_BLOCK_SIZE);
/** The largest size an 11-digit octal ustar field holds: 8 GiB - 1. */
const USTAR_MAX_SIZE = 0o77777777777;
/** pax and GNU long-name headers are a few hundred bytes; refuse absurd ones. */
const MAX_META_SIZE = 1024 * 1024;

// ---------------------------------------------------------------------------
// Writing

export interface TarHeader {
  /** A relative posix path; directories may end in `/`. */
  name: string;
  size: number;
  type: 'file' | 'directory';
  /** Seconds since the epoch. */
  mtime: number;
}

/** Bytes of padding after `size` bytes of data. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK_SIZE - (size % TAR_BLOCK_SIZE)) % TAR_BLOCK_SIZE;
}

/**
 * The header block(s) that precede an entry's data. Every field that could vary
 * between machines is fixed: uid/gid 0, no user or group names, mode 0644 for
 * files and 0755 for directories, the mtime given. A name over 100 bytes goes in
 * the ustar prefix field when it splits at a `/`, else in a pax `path` record; a
 * size of 8 GiB or more in a pax `size` record.
 */
export function encodeTarHeader(h: TarHeader): Buffer {
  const typeflag = h.type === 'directory' ? '5' : '0';
  const mode = h.type === 'directory' ? 0o755 : 0o644;
  const split = Buffer.byteLength(h.name) > 100 ? ustarSplit(h.name) : { prefix: '', name: h.name };
  const records: Buffer[] = [];
  if (split === undefined) records.push(paxRecord('path', h.name));
  if (h.size > USTAR_MAX_SIZE) records.push(paxRecord('size', String(h.size)));
  const ustarSize = h.size > USTAR_MAX_SIZE ? 0 : h.size;
  if (records.length === 0) return ustarBlock(split!.name, split!.prefix, ustarSize, typeflag, mode, h.mtime);
  // The ustar fields keep what fits; readers take the pax records over them.
  const pax = Buffer.concat(records);
  const short = split?.name ?? utf8Prefix(h.name, 100);
  return Buffer.concat([
    ustarBlock(utf8Prefix(`PaxHeaders/${h.name.split('/').filter(Boolean).pop() ?? ''}`, 100), '', pax.length, 'x', 0o644, h.mtime),
    pax,
    Buffer.alloc(tarPadding(pax.length)),
    ustarBlock(short, split?.prefix ?? '', ustarSize, typeflag, mode, h.mtime),
  ]);
}

/** A name split into ustar's prefix (155 bytes) and name (100 bytes) at a `/`, if it can be. */
function ustarSplit(path: string): { prefix: string; name: string } | undefined {
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (name !== '' && Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { prefix, name };
  }
  return undefined;
}

/** At most `bytes` bytes of `s` in UTF-8, never cutting a character in two. */
function utf8Prefix(s: string, bytes: number): string {
  return Buffer.from(s)
    .subarray(0, bytes)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

function paxRecord(key: string, value: string): Buffer {
  // "%d %s=%s\n", the length counting the whole record, its own digits too
  const rest = Buffer.byteLength(` ${key}=${value}\n`);
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.from(`${len} ${key}=${value}\n`);
}

function ustarBlock(name: string, prefix: string, size: number, typeflag: string, mode: number, mtime: number): Buffer {
  const b = Buffer.alloc(TAR_BLOCK_SIZE);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, mode);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  octal(b, 124, 12, size);
  octal(b, 136, 12, mtime);
  b.fill(0x20, 148, 156); // the checksum is computed over spaces here
  b.write(typeflag, 156, 1, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  octal(b, 329, 8, 0); // devmajor
  octal(b, 337, 8, 0); // devminor
  b.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK_SIZE; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** Zero-padded octal with a NUL terminator, as GNU tar and Go's archive/tar write. */
function octal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

// ---------------------------------------------------------------------------
// The safety rule

/**
 * `./a//b/` -> `a/b`; `''` for the root directory itself. Refuses NUL characters,
 * absolute paths (a leading `/` or a drive letter), backslashes (a Windows
 * separator that could hide a `..`) and `..` components. `container` names what
 * a `..` would escape, e.g. "the bundle".
 */
export function safeTarName(raw: string, container = 'the archive'): { name: string } | { refuse: string } {
  if (raw.includes('\0')) return { refuse: 'has a NUL character in its name' };
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) return { refuse: 'has an absolute path' };
  if (raw.includes('\\')) return { refuse: 'has a backslash in its name' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { refuse: `escapes ${container}` };
  return { name: parts.join('/') };
}

/** Entry types never read: extracting them could write outside the archive's tree or block. */
const REFUSED_TYPES: Record<string, string> = {
  '1': 'is a hard link',
  '3': 'is a character device',
  '4': 'is a block device',
  '6': 'is a FIFO',
};

/**
 * The regular file entry a symbolic link names, inside the archive: the target
 * is read relative to the link's directory and must stay inside the archive and
 * be a regular file entry (not a directory, and not another link: chains and
 * loops are refused). `entries` holds the archive's entries by normalized name.
 */
export function resolveTarLink(link: TarEntry, entries: ReadonlyMap<string, TarEntry>, container = 'the archive'): TarEntry {
  const target = link.linkName ?? '';
  const refuse = (why: string) => new TarFormatError('unsafe', `is a symbolic link to ${JSON.stringify(target)}, ${why}`, link.rawName);
  if (target === '' || target.includes('\0') || target.includes('\\')) throw refuse('which is not a name ferry reads');
  if (target.startsWith('/')) throw refuse(`outside ${container}`);
  const parts = link.name.split('/').slice(0, -1);
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p !== '..') parts.push(p);
    else if (parts.pop() === undefined) throw refuse(`outside ${container}`);
  }
  const found = entries.get(parts.join('/'));
  if (found === undefined) throw refuse(`which ${container} does not hold`);
  if (found.type === 'symlink') throw refuse('another link (ferry follows one link, not chains)');
  if (found.type !== 'file') throw refuse('which is not a regular file');
  return found;
}

// ---------------------------------------------------------------------------
// Reading

export interface TarEntry {
  /** The name after the safety rule, e.g. `blobs/sha256/<hex>`; `''` for the root directory. */
  name: string;
  /** The name as the archive spells it (for messages). */
  rawName: string;
  type: 'file' | 'directory' | 'symlink';
  /** A symbolic link's target as the archive spells it (only with `symlinks: true`). */
  linkName?: string;
  /** Byte offset of the entry's data. */
  offset: number;
  /** Bytes of data. */
  size: number;
}

/**
 * Why an archive cannot be read: `not-tar` (the first header is not one),
 * `truncated`, `damaged`, or `unsafe` (an entry the safety rule refuses). The
 * message is the detail (`entry "NAME" PROBLEM` where an entry is at fault);
 * callers say what the archive is.
 */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
  constructor(
    readonly reason: 'not-tar' | 'truncated' | 'damaged' | 'unsafe',
    /** What is wrong, e.g. "is a symbolic link". */
    readonly problem: string,
    /** The entry at fault, as the archive names it. */
    readonly entry?: string,
  ) {
    super(entry === undefined ? problem : `entry ${JSON.stringify(entry)} ${problem}`);
  }
}

export interface TarWalkOptions {
  /** What a `..` would escape, for messages ("the bundle"); "the archive" unless given. */
  container?: string;
  /**
   * Accept an archive that ends without its two zero blocks, as Go's archive/tar
   * (and so helm) does. Bundles are strict: a missing end means a cut-off copy.
   */
  endOptional?: boolean;
  /**
   * Yield symbolic links (type `symlink`, with `linkName`) for the caller to
   * resolve with resolveTarLink, as docker archives need for repeated layers;
   * without it a link is refused.
   */
  symlinks?: boolean;
}

/** The positional reads the walk needs (a FileHandle, or a bundle split into parts). */
export interface TarFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
}

/** A step of the walk: it needs bytes, or it found an entry. */
type Step = { read: { position: number; length: number } } | { entry: TarEntry };

/**
 * The walk itself, for any way of reading: it yields the bytes it needs and is
 * handed them back (fewer where the file ends), and yields each entry.
 */
function* walk(fileSize: number, opts: TarWalkOptions): Generator<Step, void, Buffer> {
  const container = opts.container ?? 'the archive';
  let pos = 0;
  let pax: Map<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  let first = true;
  const notTar = () => new TarFormatError('not-tar', 'not a tar archive');

  for (;;) {
    if (pos >= fileSize) {
      if (first) throw notTar();
      if (opts.endOptional && pax === undefined && longName === undefined) return;
      throw new TarFormatError('truncated', `it ends at byte ${fileSize} without the tar end-of-archive marker`);
    }
    const header: Buffer = yield { read: { position: pos, length: TAR_BLOCK_SIZE } };
    if (header.length < TAR_BLOCK_SIZE) {
      if (first) throw notTar();
      throw new TarFormatError('truncated', `the tar header at byte ${pos} is cut off at byte ${fileSize}`);
    }
    if (isZero(header)) {
      // End of archive: two zero blocks, though one is accepted (as GNU tar does).
      if (pax !== undefined || longName !== undefined) {
        throw new TarFormatError('truncated', 'an extended header at the end is not followed by its entry');
      }
      return;
    }
    if (!checksumOk(header)) {
      if (first) throw notTar();
      throw new TarFormatError('damaged', `the tar header at byte ${pos} has a bad checksum`);
    }
    first = false;

    const typeflag = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
    let rawName = str(header, 0, 100);
    if (header.toString('latin1', 257, 263) === 'ustar\0') {
      // POSIX ustar: a prefix field (GNU tar uses that area for other things).
      const prefix = str(header, 345, 155);
      if (prefix !== '') rawName = `${prefix}/${rawName}`;
    }
    let size = num(header, 124, 12);
    if (size === undefined) throw new TarFormatError('damaged', `the tar header at byte ${pos} has an unreadable size`);
    const dataOffset = pos + TAR_BLOCK_SIZE;

    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META_SIZE) throw new TarFormatError('damaged', `the extended header at byte ${pos} claims ${size} bytes`);
      if (dataOffset + size > fileSize) {
        throw new TarFormatError('truncated', `the extended header at byte ${pos} runs past the end of the file (byte ${fileSize})`);
      }
      const data: Buffer = yield { read: { position: dataOffset, length: size } };
      if (typeflag === 'x') pax = parsePax(data, pos);
      else if (typeflag === 'L') longName = str(data, 0, data.length);
      else if (typeflag === 'K') longLink = str(data, 0, data.length);
      // 'g' (global pax) carries nothing a reader here uses.
      pos = dataOffset + size + tarPadding(size);
      continue;
    }

    // An ordinary entry: extended headers before it override its name and size.
    const paxPath = pax?.get('path');
    if (paxPath !== undefined) rawName = paxPath;
    else if (longName !== undefined) rawName = longName;
    const paxSize = pax?.get('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) {
        throw new TarFormatError('damaged', `has an invalid pax size "${paxSize}"`, rawName);
      }
      size = Number(paxSize);
    }
    const linkName = pax?.get('linkpath') ?? longLink ?? str(header, 157, 100);
    pax = undefined;
    longName = undefined;
    longLink = undefined;

    const safe = safeTarName(rawName, container);
    if ('refuse' in safe) throw new TarFormatError('unsafe', safe.refuse, rawName);
    if (typeflag === '2') {
      if (!opts.symlinks) throw new TarFormatError('unsafe', 'is a symbolic link', rawName);
      yield { entry: { name: safe.name, rawName, type: 'symlink', linkName, offset: dataOffset, size: 0 } };
      pos = dataOffset + size + tarPadding(size);
      continue;
    }
    const refused = REFUSED_TYPES[typeflag];
    if (refused !== undefined) throw new TarFormatError('unsafe', refused, rawName);
    if (typeflag === '5') {
      // Directories carry no data (a GNU dumpdir 'D' would, but is refused below).
      yield { entry: { name: safe.name, rawName, type: 'directory', offset: dataOffset, size: 0 } };
      pos = dataOffset + size + tarPadding(size);
      continue;
    }
    if (typeflag !== '0' && typeflag !== '7') {
      throw new TarFormatError('unsafe', `has an unsupported tar entry type "${typeflag}"`, rawName);
    }
    if (dataOffset + size > fileSize) {
      throw new TarFormatError('truncated', `needs ${size} bytes from byte ${dataOffset}, but the file ends at byte ${fileSize}`, safe.name);
    }
    yield { entry: { name: safe.name, rawName, type: 'file', offset: dataOffset, size } };
    pos = dataOffset + size + tarPadding(size);
  }
}

/**
 * The entries of a tar file, walked with positional reads of its headers.
 * Throws a TarFormatError for anything that is not a tar, is truncated or
 * damaged, or holds an entry the safety rule refuses.
 */
export async function* readTarEntries(file: string | TarFile, opts: TarWalkOptions = {}): AsyncGenerator<TarEntry> {
  const owned = typeof file === 'string' ? await open(file, 'r') : undefined;
  const fh: TarFile = owned ?? (file as TarFile);
  try {
    const steps = walk((await fh.stat()).size, opts);
    for (let step = steps.next(); !step.done; ) {
      const s = step.value;
      if ('entry' in s) {
        yield s.entry;
        step = steps.next();
        continue;
      }
      const buf = Buffer.alloc(s.read.length);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, s.read.position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      step = steps.next(buf.subarray(0, got));
    }
  } finally {
    await owned?.close();
  }
}

/** The entries of a tar held in memory, each with its data (a view, not a copy). Throws as readTarEntries. */
export function tarEntriesOf(tar: Buffer, opts: TarWalkOptions = {}): Array<TarEntry & { data: Buffer }> {
  const out: Array<TarEntry & { data: Buffer }> = [];
  const steps = walk(tar.length, opts);
  for (let step = steps.next(); !step.done; ) {
    const s = step.value;
    if ('entry' in s) {
      out.push({ ...s.entry, data: tar.subarray(s.entry.offset, s.entry.offset + s.entry.size) });
      step = steps.next();
    } else {
      step = steps.next(tar.subarray(s.read.position, s.read.position + s.read.length));
    }
  }
  return out;
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
  for (let i = 0; i < TAR_BLOCK_SIZE; i++) {
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
function parsePax(data: Buffer, at: number): Map<string, string> {
  const out = new Map<string, string>();
  const malformed = () => new TarFormatError('damaged', `the pax extended header at byte ${at} is malformed`);
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, i);
    const len = space < 0 ? NaN : Number(data.toString('latin1', i, space));
    if (!Number.isInteger(len) || len <= space - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) throw malformed();
    const record = data.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (eq < 0) throw malformed();
    out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}
