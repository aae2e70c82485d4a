// The one tar module: headers it writes are what GNU tar reads, archives GNU tar
// writes (ustar, pax, GNU long names) are what it reads, the file and in-memory
// walks agree, and the safety rule refuses what it says it refuses.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeTarHeader, readTarEntries, safeTarName, TAR_END_OF_ARCHIVE, TarFormatError, type TarHeader, tarEntriesOf, tarPadding } from '../src/tar.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function archive(entries: Array<Omit<TarHeader, 'mtime' | 'size'> & { data?: Buffer }>, end = true): Buffer {
  const parts = entries.flatMap((e) => {
    const data = e.data ?? Buffer.alloc(0);
    return [encodeTarHeader({ name: e.name, size: data.length, type: e.type, mtime: 86400 }), data, Buffer.alloc(tarPadding(data.length))];
  });
  return Buffer.concat([...parts, ...(end ? [TAR_END_OF_ARCHIVE] : [])]);
}

function rejection(fn: () => unknown): TarFormatError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TarFormatError) return e;
    throw e;
  }
  throw new Error('expected a TarFormatError');
}

const split = `templates/${'a'.repeat(80)}/${'b'.repeat(80)}.yaml`; // 172 bytes: fits ustar's prefix + name
const long = `templates/${'x'.repeat(120)}.yaml`; // one 124-byte component: needs a pax path
const unicode = 'files/ünïcødé.txt';

describe('writing headers', () => {
  it('writes ustar names, prefix splits, pax paths and fixed owners that GNU tar lists back', () => {
    const tar = archive([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a.txt', type: 'file', data: Buffer.from('hello') },
      { name: split, type: 'file', data: Buffer.from('split') },
      { name: long, type: 'file', data: Buffer.from('long') },
      { name: unicode, type: 'file', data: Buffer.from('u') },
    ]);
    expect(tar.length % 512).toBe(0);
    // a prefix split needs no extra block; the pax path needs two (header + records)
    expect(encodeTarHeader({ name: split, size: 1, type: 'file', mtime: 0 }).length).toBe(512);
    expect(encodeTarHeader({ name: long, size: 1, type: 'file', mtime: 0 }).length).toBe(1536);
    const path = join(dir, 'written.tar');
    writeFileSync(path, tar);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', path], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(['dir/', 'dir/a.txt', split, long, unicode]);
    expect(listing[0]).toMatch(/^drwxr-xr-x 0\/0 +0 1970-01-02 00:00:00 dir\/$/);
    expect(listing[1]).toMatch(/^-rw-r--r-- 0\/0 +5 1970-01-02 00:00:00 dir\/a.txt$/);
  });

  it('writes a pax size record for 8 GiB and more, the record counting its own length', () => {
    const size = 9 * 1024 ** 3 + 123;
    const header = encodeTarHeader({ name: 'big', size, type: 'file', mtime: 0 });
    expect(header.length).toBe(1536);
    expect(header.subarray(512, 512 + 19).toString()).toBe(`19 size=${size}\n`);
    // the ustar size field says 0; readers take the record
    expect(header.toString('latin1', 1024 + 124, 1024 + 136)).toBe('00000000000\0');
  });
});

describe('reading', () => {
  it('reads back what it wrote: names, types, offsets and data, from a file and from memory alike', async () => {
    const tar = archive([
      { name: './dir/', type: 'directory' },
      { name: 'dir/a.txt', type: 'file', data: Buffer.from('hello') },
      { name: split, type: 'file', data: Buffer.alloc(700, 1) },
      { name: long, type: 'file', data: Buffer.from('long') },
    ]);
    const inMemory = tarEntriesOf(tar);
    expect(inMemory.map((e) => [e.name, e.type, e.size])).toEqual([
      ['dir', 'directory', 0],
      ['dir/a.txt', 'file', 5],
      [split, 'file', 700],
      [long, 'file', 4],
    ]);
    expect(inMemory[0]!.rawName).toBe('./dir/');
    expect(inMemory[1]!.data.toString()).toBe('hello');
    expect(inMemory[2]!.data.equals(Buffer.alloc(700, 1))).toBe(true);
    const path = join(dir, 'roundtrip.tar');
    writeFileSync(path, tar);
    const fromFile = [];
    for await (const e of readTarEntries(path)) fromFile.push(e);
    expect(fromFile).toEqual(inMemory.map(({ data: _, ...e }) => e));
    for (const e of fromFile) expect(tar.subarray(e.offset, e.offset + e.size).equals(inMemory.find((m) => m.name === e.name)!.data)).toBe(true);
  });

  it('reads the archives GNU tar writes, in gnu (long-name records), pax and ustar formats', () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'templates', 'a'.repeat(80)), { recursive: true });
    writeFileSync(join(src, 'Chart.yaml'), 'name: c\n');
    writeFileSync(join(src, long), 'long');
    writeFileSync(join(src, split), 'split');
    for (const format of ['gnu', 'pax', 'ustar']) {
      const names = format === 'ustar' ? ['Chart.yaml', split] : ['Chart.yaml', split, long];
      const path = join(dir, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', path, '-C', src, ...names]);
      const files = tarEntriesOf(readFileSync(path)).filter((e) => e.type === 'file');
      expect(files.map((e) => e.name)).toEqual(names);
      for (const e of files) expect(e.data.equals(readFileSync(join(src, e.name)))).toBe(true);
    }
  });

  it('says what is wrong with an archive that is not one, is cut short or is damaged', () => {
    expect(rejection(() => tarEntriesOf(Buffer.from('not a tar at all'))).reason).toBe('not-tar');
    const tar = archive([{ name: 'a', type: 'file', data: Buffer.alloc(600) }]);
    const noEnd = tar.subarray(0, tar.length - 1024);
    expect(rejection(() => tarEntriesOf(noEnd)).message).toBe(`it ends at byte ${noEnd.length} without the tar end-of-archive marker`);
    // as Go's archive/tar (and so helm) does, a missing end can be accepted
    expect(tarEntriesOf(noEnd, { endOptional: true }).map((e) => e.name)).toEqual(['a']);
    const cut = rejection(() => tarEntriesOf(tar.subarray(0, 700)));
    expect([cut.reason, cut.entry, cut.message]).toEqual(['truncated', 'a', 'entry "a" needs 600 bytes from byte 512, but the file ends at byte 700']);
    const twoEntries = Buffer.concat([archive([{ name: 'a', type: 'file' }], false), archive([{ name: 'b', type: 'file' }])]);
    twoEntries[512 + 10] = twoEntries[512 + 10]! ^ 1; // the second header
    expect(rejection(() => tarEntriesOf(twoEntries)).message).toBe('the tar header at byte 512 has a bad checksum');
  });
});

describe('the safety rule', () => {
  it('normalizes names and refuses absolute paths, drive letters, backslashes, .. and NUL', () => {
    expect(safeTarName('./a//b/')).toEqual({ name: 'a/b' });
    expect(safeTarName('./')).toEqual({ name: '' });
    expect(safeTarName('a/./b/..c')).toEqual({ name: 'a/b/..c' });
    expect(safeTarName('/etc/passwd')).toEqual({ refuse: 'has an absolute path' });
    expect(safeTarName('C:/Windows')).toEqual({ refuse: 'has an absolute path' });
    expect(safeTarName('a\\..\\..\\b')).toEqual({ refuse: 'has a backslash in its name' });
    expect(safeTarName('a/../../b')).toEqual({ refuse: 'escapes the archive' });
    expect(safeTarName('../x', 'the bundle')).toEqual({ refuse: 'escapes the bundle' });
    expect(safeTarName('a\0b')).toEqual({ refuse: 'has a NUL character in its name' });
  });

  it('refuses entries by the rule while walking, and links, devices and FIFOs whatever their name', () => {
    const outside = rejection(() => tarEntriesOf(archive([{ name: '../../etc/evil', type: 'file' }]), { container: 'the chart' }));
    expect([outside.reason, outside.entry, outside.problem]).toEqual(['unsafe', '../../etc/evil', 'escapes the chart']);
    const src = join(dir, 'links');
    mkdirSync(src);
    writeFileSync(join(src, 'target'), 'x');
    symlinkSync('/etc/passwd', join(src, 'sym'));
    execFileSync('ln', [join(src, 'target'), join(src, 'hard')]);
    execFileSync('mkfifo', [join(src, 'fifo')]);
    const refusal = (name: string) => {
      const path = join(dir, `${name}.tar`);
      execFileSync('tar', ['-cf', path, '-C', src, 'target', name]);
      return rejection(() => tarEntriesOf(readFileSync(path))).message;
    };
    expect(refusal('sym')).toBe('entry "sym" is a symbolic link');
    expect(refusal('hard')).toBe('entry "hard" is a hard link');
    expect(refusal('fifo')).toBe('entry "fifo" is a FIFO');
  });
});
