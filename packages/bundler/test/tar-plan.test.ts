import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTarHeader, TAR_END_OF_ARCHIVE } from '@ferry/oci-client';
import { afterAll, describe, expect, it } from 'vitest';
import { indexTar } from '../src/places/tar-index.js';
import { planLayout } from '../src/tar-plan.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-layout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEX = 'ab'.repeat(32);

/** Writes a planned tar's headers and metadata; blob regions stay sparse (zeros). */
function writeSparse(path: string, layout: ReturnType<typeof planLayout>): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, layout.totalSize);
  for (const e of layout.entries) {
    writeSync(fd, e.header, 0, e.header.length, e.headerOffset);
    if (e.bytes) writeSync(fd, e.bytes, 0, e.bytes.length, e.dataOffset);
  }
  writeSync(fd, TAR_END_OF_ARCHIVE, 0, TAR_END_OF_ARCHIVE.length, layout.endOffset);
  closeSync(fd);
}

describe('the tar plan', () => {
  it('puts entries in the documented order with 512-byte alignment', () => {
    const layout = planLayout(
      [
        { name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
        { name: 'index.json', bytes: Buffer.from('{}') },
      ],
      [{ digest: `sha256:${HEX}`, size: 1000 }],
      0,
    );
    expect(layout.entries.map((e) => e.name)).toEqual(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', `blobs/sha256/${HEX}`]);
    for (const e of layout.entries) expect(e.headerOffset % 512).toBe(0);
    expect(layout.totalSize % 512).toBe(0);
    const path = join(dir, 'small.tar');
    writeSparse(path, layout);
    expect(execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).trim().split('\n')).toEqual(layout.entries.map((e) => e.name));
  });

  it('writes a pax size record for a 9 GiB blob that GNU tar and our reader understand', async () => {
    const size = 9 * 1024 ** 3 + 123;
    const header = encodeTarHeader({ name: `blobs/sha256/${HEX}`, size, type: 'file', mtime: 0 });
    expect(header.length).toBe(512 * 3);
    // The record length counts itself: "19 size=9663676539\n" is 19 bytes.
    expect(header.subarray(512, 512 + 19).toString()).toBe(`19 size=${size}\n`);
    const layout = planLayout(
      [{ name: 'oci-layout', bytes: Buffer.from('{}') }],
      [
        { digest: `sha256:${HEX}`, size },
        { digest: `sha256:${'cd'.repeat(32)}`, size: 10 },
      ],
      0,
    );
    const path = join(dir, 'huge.tar');
    writeSparse(path, layout);
    const listing = execFileSync('tar', ['-tvf', path], { encoding: 'utf8' });
    expect(listing).toContain(` ${size} `);
    expect(listing).toContain(`blobs/sha256/${'cd'.repeat(32)}`);
    const index = await indexTar(path);
    const big = index.get(`blobs/sha256/${HEX}`)!;
    expect(big.size).toBe(size);
    expect(big.offset).toBe(layout.blobs.get(`sha256:${HEX}`)!.dataOffset);
    expect(index.get(`blobs/sha256/${'cd'.repeat(32)}`)!.offset).toBe(layout.blobs.get(`sha256:${'cd'.repeat(32)}`)!.dataOffset);
  });

  it('names sha512 blobs (141 bytes) with a pax path record', async () => {
    const hex512 = 'ef'.repeat(64);
    const layout = planLayout([{ name: 'oci-layout', bytes: Buffer.from('{}') }], [{ digest: `sha512:${hex512}`, size: 700 }], 0);
    const path = join(dir, 'sha512.tar');
    writeSparse(path, layout);
    expect(execFileSync('tar', ['-tf', path], { encoding: 'utf8' }).trim().split('\n')).toEqual([
      'oci-layout',
      'blobs/',
      'blobs/sha512/',
      `blobs/sha512/${hex512}`,
    ]);
    const entry = (await indexTar(path)).get(`blobs/sha512/${hex512}`)!;
    expect(entry).toMatchObject({ size: 700, offset: layout.blobs.get(`sha512:${hex512}`)!.dataOffset });
  });
});
