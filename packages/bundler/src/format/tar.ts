/**
 * Writing tar headers for the bundle: POSIX ustar, with a pax extended header
 * only where ustar cannot say it (sizes of 8 GiB and more). Every field that
 * could vary between machines is fixed: mtime, uid/gid 0, no user or group
 * names, mode 0644 for files and 0755 for directories.
 */

export const BLOCK = 512;
/** The largest size an 11-digit octal ustar field holds: 8 GiB - 1. */
const USTAR_MAX_SIZE = 0o77777777777;

export interface TarEntryHeader {
  name: string;
  size: number;
  type: 'file' | 'directory';
  /** Seconds since the epoch. */
  mtime: number;
}

/** Bytes of padding after `size` bytes of data. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** pax records an entry needs: a size over 8 GiB, a name over 100 bytes (sha512 blobs). */
function paxRecords(h: Pick<TarEntryHeader, 'name' | 'size'>): Buffer {
  const records: Buffer[] = [];
  if (Buffer.byteLength(h.name) > 100) records.push(paxRecord('path', h.name));
  if (h.size > USTAR_MAX_SIZE) records.push(paxRecord('size', String(h.size)));
  return Buffer.concat(records);
}

/** The header block(s) that precede an entry's data: a pax header first when needed. */
export function encodeHeader(h: TarEntryHeader): Buffer {
  const typeflag = h.type === 'directory' ? '5' : '0';
  const mode = h.type === 'directory' ? 0o755 : 0o644;
  const pax = paxRecords(h);
  if (pax.length === 0) return ustarBlock(h.name, h.size, typeflag, mode, h.mtime);
  // The ustar fields keep what fits; readers take the pax records over them.
  const shortName = Buffer.from(h.name).subarray(0, 100).toString('latin1');
  return Buffer.concat([
    ustarBlock(`PaxHeaders/${h.name.split('/').pop()}`.slice(0, 100), pax.length, 'x', 0o644, h.mtime),
    pax,
    Buffer.alloc(padding(pax.length)),
    ustarBlock(shortName, h.size > USTAR_MAX_SIZE ? 0 : h.size, typeflag, mode, h.mtime),
  ]);
}

/** Size of the header block(s) `encodeHeader` makes for this entry. */
export function headerSize(h: Pick<TarEntryHeader, 'name' | 'size'>): number {
  const pax = paxRecords(h).length;
  return pax === 0 ? BLOCK : BLOCK + pax + padding(pax) + BLOCK;
}

function paxRecord(key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`;
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.from(`${len}${rest}`);
}

function ustarBlock(name: string, size: number, typeflag: string, mode: number, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'latin1');
  octal(b, 100, 8, mode);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  octal(b, 124, 12, size > USTAR_MAX_SIZE ? 0 : size);
  octal(b, 136, 12, mtime);
  b.fill(0x20, 148, 156); // checksum is computed over spaces here
  b.write(typeflag, 156, 1, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  octal(b, 329, 8, 0); // devmajor
  octal(b, 337, 8, 0); // devminor
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** Zero-padded octal with a NUL terminator, as GNU tar and Go's archive/tar write. */
function octal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'latin1');
}

/** The end of archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
