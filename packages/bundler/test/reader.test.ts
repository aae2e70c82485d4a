import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { encodeTarHeader, FerryError, TAR_END_OF_ARCHIVE } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BundleReader, openBundle } from '../src/places/bundle-reader.js';
import { indexTar } from '../src/places/tar-index.js';
import {
  BlobSet,
  base256Header,
  type Desc,
  ferryBundle,
  ferryJsonFor,
  hexOf,
  indexJson,
  named,
  OCI_LAYOUT,
  paxRecords,
  type RawEntry,
  rawEntry,
  rawTar,
  sha256,
  twoImages,
  ustarHeader,
  writeLayoutDir,
  writerDir,
  writerEntry,
} from './reader-fixtures.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ferry-reader-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function tarFile(bytes: Buffer, name = `t${++counter}.tar`): Promise<string> {
  const p = join(tmp, name);
  await writeFile(p, bytes);
  return p;
}

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejection(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    return e as FerryError;
  }
  throw new Error('expected a rejection');
}

/** The minimal valid bundle parts, then whatever the test adds. */
function minimal(): { parts: Buffer[]; blob: Buffer; digest: string } {
  const blob = Buffer.from('{"hello":"world"}');
  const digest = sha256(blob);
  return {
    parts: [rawEntry({ name: 'oci-layout', data: OCI_LAYOUT }), rawEntry({ name: 'index.json', data: indexJson([]) })],
    blob,
    digest,
  };
}

/** A layout directory with two images (one of two platforms), sharing a layer. */
async function layoutDir(name: string): Promise<{ dir: string; fx: ReturnType<typeof twoImages>; images: Desc[] }> {
  const fx = twoImages();
  const dir = join(tmp, name);
  const images = [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)];
  await writeLayoutDir(dir, images, fx.blobs);
  return { dir, fx, images };
}

async function expectAllBlobs(reader: BundleReader, blobs: BlobSet): Promise<void> {
  for (const [digest, bytes] of blobs.blobs) {
    expect(reader.hasBlob(digest)).toBe(true);
    expect(reader.blobSize(digest)).toBe(bytes.length);
    expect((await drain(reader.openBlob({ digest, size: bytes.length }))).equals(bytes)).toBe(true);
    expect((await reader.readBlob({ digest, size: bytes.length })).equals(bytes)).toBe(true);
  }
}

describe('indexTar', () => {
  it('indexes a tar written by GNU tar: offsets and sizes point at the exact blob bytes', async () => {
    const { dir, fx } = await layoutDir('gnu');
    const file = join(tmp, 'gnu.tar');
    execFileSync('tar', ['-cf', file, '-C', dir, 'oci-layout', 'index.json', 'blobs']);
    const index = await indexTar(file);
    const whole = await readFile(file);
    expect(index.get('oci-layout')).toMatchObject({ size: OCI_LAYOUT.length });
    for (const [digest, bytes] of fx.blobs.blobs) {
      const e = index.get(`blobs/sha256/${hexOf(digest)}`)!;
      expect(e.size).toBe(bytes.length);
      expect(whole.subarray(e.offset, e.offset + e.size).equals(bytes)).toBe(true);
    }
    // Directories are fine, and not listed.
    expect([...index.keys()].sort()).toEqual(['index.json', 'oci-layout', ...[...fx.blobs.blobs.keys()].map((d) => `blobs/sha256/${hexOf(d)}`)].sort());
  });

  it('normalizes a leading ./ (tar -C DIR .) and reads POSIX pax and GNU long-name archives', async () => {
    const { dir, fx } = await layoutDir('dot');
    // A long name forces a pax 'x' header (posix) or a GNU 'L' header (gnu); it is ignored.
    await mkdir(join(dir, 'x'.repeat(90)), { recursive: true });
    await writeFile(join(dir, 'x'.repeat(90), 'y'.repeat(60)), 'ignored');
    for (const format of ['posix', 'gnu', 'ustar']) {
      const file = join(tmp, `dot-${format}.tar`);
      const args = ['-cf', file, `--format=${format}`, '-C', dir];
      if (format === 'ustar') execFileSync('tar', [...args, 'oci-layout', 'index.json', 'blobs']);
      else execFileSync('tar', [...args, '.']);
      const index = await indexTar(file);
      const whole = await readFile(file);
      expect(index.has('oci-layout')).toBe(true);
      expect(index.has('index.json')).toBe(true);
      for (const [digest, bytes] of fx.blobs.blobs) {
        const e = index.get(`blobs/sha256/${hexOf(digest)}`)!;
        expect(whole.subarray(e.offset, e.offset + e.size).equals(bytes), format).toBe(true);
      }
    }
  });

  it('takes size and path from a pax extended header', async () => {
    const { parts, blob, digest } = minimal();
    const pax = paxRecords({ size: String(blob.length), path: `blobs/sha256/${hexOf(digest)}`, mtime: '0.5' });
    const file = await tarFile(
      rawTar([
        ...parts,
        rawEntry({ name: 'PaxHeaders/ignored', type: 'g', data: paxRecords({ comment: 'global' }) }),
        rawEntry({ name: 'PaxHeaders/x', type: 'x', data: pax }),
        // The ustar header's own name and size are overridden by the pax records.
        Buffer.concat([ustarHeader({ name: 'short-name', headerSize: 0 }), blob, Buffer.alloc(512 - blob.length)]),
      ]),
    );
    const e = (await indexTar(file)).get(`blobs/sha256/${hexOf(digest)}`)!;
    expect(e.size).toBe(blob.length);
    expect((await readFile(file)).subarray(e.offset, e.offset + e.size).equals(blob)).toBe(true);
    expect((await indexTar(file)).has('short-name')).toBe(false);
  });

  it('takes the name from a GNU long-name header and the size from a base-256 field', async () => {
    const { parts, blob, digest } = minimal();
    const name = `blobs/sha256/${hexOf(digest)}`;
    const file = await tarFile(
      rawTar([
        ...parts,
        rawEntry({ name: '././@LongLink', type: 'L', data: Buffer.from(`${name}\0`) }),
        rawEntry({ name: 'truncated-name', data: blob }),
        Buffer.concat([base256Header('ferry.sig', 3), Buffer.from('sig'), Buffer.alloc(509)]),
      ]),
    );
    const index = await indexTar(file);
    expect(index.get(name)).toMatchObject({ size: blob.length });
    expect(index.get('ferry.sig')).toMatchObject({ size: 3 });
  });

  it('handles entries of 8 GiB and more (pax size written by the bundle writer)', async () => {
    const big = 8 * 1024 ** 3 + 5;
    const hex = 'a'.repeat(64);
    const head = Buffer.concat([
      writerEntry('oci-layout', OCI_LAYOUT),
      writerEntry('index.json', indexJson([])),
      encodeTarHeader({ name: `blobs/sha256/${hex}`, size: big, type: 'file', mtime: 0 }),
    ]);
    const file = await tarFile(head);
    // A sparse file: the data region and the end-of-archive marker are holes of zeros.
    await truncate(file, head.length + big + (512 - (big % 512)) + TAR_END_OF_ARCHIVE.length);
    const e = (await indexTar(file)).get(`blobs/sha256/${hex}`)!;
    expect(e).toEqual({ name: `blobs/sha256/${hex}`, offset: head.length, size: big });
  });

  it('ignores files other tools write (repositories, docker save layer dirs, other algorithms)', async () => {
    const { parts, blob, digest } = minimal();
    const file = await tarFile(
      rawTar([
        ...parts,
        rawEntry({ name: 'manifest.json', data: Buffer.from('[]') }),
        rawEntry({ name: 'repositories', data: Buffer.from('{}') }),
        rawEntry({ name: 'abc123/', type: '5' }),
        rawEntry({ name: 'abc123/layer.tar', data: Buffer.from('x') }),
        rawEntry({ name: 'blobs/blake3/0123', data: Buffer.from('x') }),
        rawEntry({ name: `blobs/sha256/${hexOf(digest)}`, data: blob }),
      ]),
    );
    // manifest.json is indexed (verify compares a ferry bundle's with its index), the rest is not.
    expect([...(await indexTar(file)).keys()]).toEqual(['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${hexOf(digest)}`]);
    const reader = await openBundle(file);
    try {
      expect(reader.kind).toBe('oci-archive');
      expect(reader.blobs()).toEqual([{ digest, size: blob.length }]);
    } finally {
      await reader.close();
    }
  });

  const refusals: Array<[string, RawEntry[], string]> = [
    ['a .. component', [{ name: '../x', data: Buffer.from('x') }], 'entry "../x" escapes the bundle'],
    ['a .. inside the path', [{ name: 'blobs/../../etc/x', data: Buffer.from('x') }], 'entry "blobs/../../etc/x" escapes the bundle'],
    ['a .. in a directory entry', [{ name: './../', type: '5' }], 'entry "./../" escapes the bundle'],
    ['an absolute path', [{ name: '/etc/passwd', data: Buffer.from('x') }], 'entry "/etc/passwd" has an absolute path'],
    ['an absolute path in the ustar prefix', [{ name: 'passwd', prefix: '/etc', data: Buffer.from('x') }], 'entry "/etc/passwd" has an absolute path'],
    ['a symbolic link', [{ name: 'evil', type: '2', linkname: '/etc/passwd' }], 'entry "evil" is a symbolic link'],
    [
      'a symbolic link named like a blob',
      [{ name: `blobs/sha256/${'b'.repeat(64)}`, type: '2', linkname: '/etc/shadow' }],
      `entry "blobs/sha256/${'b'.repeat(64)}" is a symbolic link`,
    ],
    ['a hard link', [{ name: 'index2.json', type: '1', linkname: 'index.json' }], 'entry "index2.json" is a hard link'],
    ['a character device', [{ name: 'null', type: '3' }], 'entry "null" is a character device'],
    ['a block device', [{ name: 'sda', type: '4' }], 'entry "sda" is a block device'],
    ['a FIFO', [{ name: 'fifo', type: '6' }], 'entry "fifo" is a FIFO'],
    ['a duplicate index.json', [{ name: './index.json', data: indexJson([]) }], 'entry "./index.json" appears more than once'],
    ['a directory named like a used file', [{ name: 'ferry.json/', type: '5' }], 'entry "ferry.json/" is a directory where a file is expected'],
    ['a malformed blob name', [{ name: 'blobs/sha256/ABC', data: Buffer.from('x') }], 'entry "blobs/sha256/ABC" is not named by a sha256 digest'],
    ['an unsupported entry type', [{ name: 'sparse', type: 'S' }], 'entry "sparse" has an unsupported tar entry type "S"'],
  ];
  for (const [what, entries, message] of refusals) {
    it(`refuses ${what}`, async () => {
      const { parts } = minimal();
      const file = await tarFile(rawTar([...parts, ...entries.map(rawEntry)]));
      const err = await rejection(indexTar(file));
      expect(err.kind).toBe('usage');
      expect(err.message).toContain(`${file} is not a safe bundle: ${message}`);
      // openBundle refuses the same way.
      expect((await rejection(openBundle(file))).message).toBe(err.message);
    });
  }

  it('refuses a duplicate blob and a duplicate set by a pax path', async () => {
    const { parts, blob, digest } = minimal();
    const name = `blobs/sha256/${hexOf(digest)}`;
    const dup = await tarFile(rawTar([...parts, rawEntry({ name, data: blob }), rawEntry({ name: `./${name}`, data: blob })]));
    expect((await rejection(indexTar(dup))).message).toBe(`${dup} is not a safe bundle: entry "./${name}" appears more than once`);
    const viaPax = await tarFile(
      rawTar([
        ...parts,
        rawEntry({ name: 'PaxHeaders/x', type: 'x', data: paxRecords({ path: 'index.json' }) }),
        rawEntry({ name: 'harmless', data: Buffer.from('{}') }),
      ]),
    );
    expect((await rejection(indexTar(viaPax))).message).toBe(`${viaPax} is not a safe bundle: entry "index.json" appears more than once`);
    const escapeViaPax = await tarFile(
      rawTar([...parts, rawEntry({ name: 'x', type: 'x', data: paxRecords({ path: '../../x' }) }), rawEntry({ name: 'harmless', data: Buffer.from('') })]),
    );
    expect((await rejection(indexTar(escapeViaPax))).message).toBe(`${escapeViaPax} is not a safe bundle: entry "../../x" escapes the bundle`);
  });

  it('refuses a symbolic link that GNU tar archived from a layout directory', async () => {
    const { dir } = await layoutDir('withlink');
    await symlink('/etc/passwd', join(dir, 'passwd'));
    const file = join(tmp, 'withlink.tar');
    execFileSync('tar', ['-cf', file, '-C', dir, 'oci-layout', 'index.json', 'passwd', 'blobs']);
    expect((await rejection(openBundle(file))).message).toBe(
      `${file} is not a safe bundle: entry "passwd" is a symbolic link to "/etc/passwd", outside the bundle`,
    );
  });

  it('says a file cut short is truncated, wherever it was cut', async () => {
    const { parts, blob, digest } = minimal();
    const whole = rawTar([...parts, rawEntry({ name: `blobs/sha256/${hexOf(digest)}`, data: blob })]);
    const blobAt = whole.length - 1024 - 512;
    // In the middle of the blob's data.
    const mid = await tarFile(whole.subarray(0, blobAt + 5));
    expect((await rejection(indexTar(mid))).message).toBe(
      `${mid} is truncated: entry "blobs/sha256/${hexOf(digest)}" needs ${blob.length} bytes from byte ${blobAt}, but the file ends at byte ${blobAt + 5}; copy the file again`,
    );
    // Just after an entry: no end-of-archive marker.
    const noEnd = await tarFile(whole.subarray(0, whole.length - 1024));
    expect((await rejection(indexTar(noEnd))).message).toBe(
      `${noEnd} is truncated: it ends at byte ${whole.length - 1024} without the tar end-of-archive marker; copy the file again`,
    );
    // In the middle of a header.
    const inHeader = await tarFile(whole.subarray(0, blobAt - 200));
    expect((await rejection(indexTar(inHeader))).message).toBe(
      `${inHeader} is truncated: the tar header at byte ${blobAt - 512} is cut off at byte ${blobAt - 200}; copy the file again`,
    );
    expect((await rejection(openBundle(mid))).kind).toBe('usage');
  });

  it('says a file that is not a tar is not a bundle', async () => {
    const text = await tarFile(Buffer.from('hello, this is not a tar archive\n'.repeat(40)), 'notes.txt');
    expect((await rejection(indexTar(text))).message).toBe(`${text} is not a bundle (not a tar archive)`);
    expect((await rejection(openBundle(text))).message).toBe(`${text} is not a bundle (not a tar archive)`);
    const gz = await tarFile(execFileSync('gzip', ['-c'], { input: rawTar(minimal().parts) }), 'bundle.tar.gz');
    expect((await rejection(openBundle(gz))).message).toBe(
      `${gz} is gzip-compressed; ferry reads bundles uncompressed (blobs are read by offset): decompress it first (gunzip)`,
    );
    const empty = await tarFile(Buffer.alloc(0), 'empty.tar');
    expect((await rejection(openBundle(empty))).message).toBe(`${empty} is not a bundle (not a tar archive)`);
  });

  it('says a header with a bad checksum is damaged', async () => {
    const { parts } = minimal();
    const file = await tarFile(rawTar([...parts, rawEntry({ name: 'ferry.sig', data: Buffer.from('x'), badChecksum: true })]));
    expect((await rejection(indexTar(file))).message).toBe(`${file} is damaged: the tar header at byte 2048 has a bad checksum`);
  });
});

describe('openBundle', () => {
  it('reads a ferry bundle: metadata, bundle id, signature, images, every blob', async () => {
    const fx = twoImages();
    const images = [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)];
    const ferryJson = ferryJsonFor(
      [
        { ref: fx.refs[0]!, desc: fx.app, platforms: ['linux/amd64', 'linux/arm64/v8'], size: 1 },
        { ref: fx.refs[1]!, desc: fx.tool, platforms: ['linux/amd64'], size: 1 },
      ],
      { images: 2, blobs: fx.blobs.blobs.size, bytes: 1, logicalBytes: 2 },
    );
    const signature = randomBytes(64);
    const { tar, indexJson: idx } = ferryBundle({ images, blobs: fx.blobs, ferryJson, signature });
    const file = await tarFile(tar, 'ferry.tar');
    const reader = await openBundle(file);
    try {
      expect(reader.kind).toBe('ferry');
      expect(reader.container).toBe('tar');
      expect(reader.name).toBe(file);
      expect(reader.indexJson.equals(idx)).toBe(true);
      expect(reader.ferryJsonBytes!.equals(ferryJson)).toBe(true);
      expect(reader.bundleId).toBe(sha256(Buffer.concat([idx, ferryJson])));
      expect(reader.signature!.equals(signature)).toBe(true);
      expect(reader.ferry!.images[0]!.ref).toBe(fx.refs[0]);
      expect(reader.images().map((i) => [i.ref, i.descriptor.digest])).toEqual([
        [fx.refs[0], fx.app.digest],
        [fx.refs[1], fx.tool.digest],
      ]);
      await expectAllBlobs(reader, fx.blobs);

      // ImageSource
      expect((await reader.resolve(fx.refs[1]!)).digest).toBe(fx.tool.digest);
      expect((await reader.resolve(fx.app.digest)).digest).toBe(fx.app.digest);
      const index = await reader.getManifest(await reader.resolve(fx.refs[0]!));
      expect(index.kind).toBe('index');
      const child = index.kind === 'index' ? index.manifest.manifests[1]! : undefined;
      const byChildDigest = await reader.resolve(child!.digest);
      expect(byChildDigest).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child!.digest, size: child!.size });
      const m = await reader.getManifest(child!);
      expect(m.kind === 'image' && m.manifest.layers.length).toBe(2);
      const nf = await rejection(reader.resolve('registry.test/team/nope:1'));
      expect(nf.kind).toBe('not-found');
      expect(nf.message).toBe(`bundle ${file} has no image named "registry.test/team/nope:1"; it has ${fx.refs.join(', ')}`);
    } finally {
      await reader.close();
    }
  });

  it('takes io.containerd.image.name when it is the only name, and the digest when there is none', async () => {
    const fx = twoImages();
    const images = [{ ...fx.app, annotations: { 'io.containerd.image.name': 'docker.io/library/app:1' } }, fx.tool];
    const file = await tarFile(ferryBundle({ images, blobs: fx.blobs }).tar);
    const reader = await openBundle(file);
    try {
      expect(reader.kind).toBe('oci-archive');
      expect(reader.bundleId).toBeUndefined();
      expect(reader.signature).toBeUndefined();
      expect(reader.images().map((i) => [i.ref, i.named])).toEqual([
        ['docker.io/library/app:1', true],
        [fx.tool.digest, false],
      ]);
      expect((await reader.resolve('docker.io/library/app:1')).digest).toBe(fx.app.digest);
    } finally {
      await reader.close();
    }
  });

  it('reads an OCI layout directory', async () => {
    const { dir, fx } = await layoutDir('layout-dir');
    const reader = await openBundle(dir);
    try {
      expect(reader.kind).toBe('oci-dir');
      expect(reader.container).toBe('directory');
      expect(reader.images().map((i) => i.ref)).toEqual(fx.refs);
      await expectAllBlobs(reader, fx.blobs);
      expect(reader.blobs().length).toBe(fx.blobs.blobs.size);
      expect((await reader.getManifest(await reader.resolve(fx.refs[1]!))).digest).toBe(fx.tool.digest);
    } finally {
      await reader.close();
    }
  });

  it('refuses a symbolic link among a layout directory blobs', async () => {
    const { dir } = await layoutDir('layout-link');
    const hex = 'c'.repeat(64);
    await symlink('/etc/passwd', join(dir, 'blobs', 'sha256', hex));
    expect((await rejection(openBundle(dir))).message).toBe(`${dir} is not a safe bundle: blobs/sha256/${hex} is a symbolic link`);
  });

  it('reads an OCI archive written by skopeo', async () => {
    const { dir, fx } = await layoutDir('for-skopeo');
    // skopeo reads an image by its ref.name in an oci: layout; give the app a short tag.
    await writeFile(join(dir, 'index.json'), indexJson([named(fx.app, 'v1')]));
    const archive = join(tmp, 'skopeo.tar');
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', `oci:${dir}:v1`, `oci-archive:${archive}:v1`]);
    const reader = await openBundle(archive);
    try {
      expect(reader.kind).toBe('oci-archive');
      // A ref.name that is a tag alone names no repository: the image goes by its digest until --name gives one.
      expect(reader.images().map((i) => [i.ref, i.bareTag])).toEqual([[fx.app.digest, 'v1']]);
      const root = await reader.resolve('v1');
      expect(root.digest).toBe(fx.app.digest); // --all keeps the index byte for byte
      const app = await reader.getManifest(root);
      expect(app.kind).toBe('index');
      // Every blob of the image is there and streams through its digest check.
      for (const [digest, bytes] of fx.blobs.blobs) {
        if (digest === fx.tool.digest || !reader.hasBlob(digest)) continue;
        expect((await drain(reader.openBlob({ digest, size: bytes.length }))).equals(bytes)).toBe(true);
      }
      expect(reader.blobs().length).toBe(fx.blobs.blobs.size - 3); // not the tool's manifest, config and own layer
    } finally {
      await reader.close();
    }
  });

  it('fails a read of an altered blob with an integrity error naming the digest', async () => {
    const fx = twoImages();
    const { tar } = ferryBundle({ images: [named(fx.app, fx.refs[0]!)], blobs: fx.blobs });
    const file = await tarFile(tar);
    const bytes = fx.blobs.blobs.get(fx.base.digest)!;
    const at = tar.indexOf(bytes.subarray(0, 64));
    const fh = await open(file, 'r+');
    await fh.write(Buffer.from([bytes[100]! ^ 0xff]), 0, 1, at + 100);
    await fh.close();
    const reader = await openBundle(file);
    try {
      const err = await rejection(drain(reader.openBlob(fx.base)));
      expect(err.kind).toBe('integrity');
      expect(err.message).toContain(`integrity check failed for blob ${fx.base.digest} in ${file}: expected digest ${fx.base.digest} but got sha256:`);
      const err2 = await rejection(reader.readBlob(fx.base));
      expect(err2.kind).toBe('integrity');
      expect(err2.message).toContain(fx.base.digest);
      // A descriptor with the wrong size is refused before reading.
      expect(() => reader.openBlob({ digest: fx.app.digest, size: fx.app.size + 1 })).toThrow(
        `integrity check failed for blob ${fx.app.digest} in ${file}: the descriptor says ${fx.app.size + 1} bytes but the bundle holds ${fx.app.size}`,
      );
    } finally {
      await reader.close();
    }
  });

  it('says which blob a bundle lacks', async () => {
    const fx = twoImages();
    const { tar } = ferryBundle({ images: [named(fx.app, fx.refs[0]!)], blobs: fx.blobs, omit: new Set([fx.base.digest]) });
    const file = await tarFile(tar);
    const reader = await openBundle(file);
    try {
      expect(reader.hasBlob(fx.base.digest)).toBe(false);
      expect(reader.blobSize(fx.base.digest)).toBeUndefined();
      let err: unknown;
      try {
        reader.openBlob(fx.base);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).kind).toBe('integrity');
      expect((err as FerryError).message).toBe(`bundle ${file} lacks blob ${fx.base.digest}`);
      expect((await rejection(reader.readBlob(fx.base))).message).toBe(`bundle ${file} lacks blob ${fx.base.digest}`);
    } finally {
      await reader.close();
    }
  });

  it('streams 16 blobs at once from one file, each with the right bytes', async () => {
    const blobs = new BlobSet();
    const descs: Desc[] = [];
    // Several sizes, some over the 1 MiB read chunk.
    for (let i = 0; i < 16; i++) descs.push(blobs.layer(i % 4 === 0 ? 2_500_000 + i : 100_000 * (i + 1) + i));
    const image = blobs.image({ os: 'linux', architecture: 'amd64' }, descs);
    const file = await tarFile(ferryBundle({ images: [named(image, 'registry.test/big:1')], blobs }).tar);
    const reader = await openBundle(file);
    try {
      const got = await Promise.all(descs.map((d) => drain(reader.openBlob(d))));
      for (let i = 0; i < descs.length; i++) {
        expect(got[i]!.length).toBe(descs[i]!.size);
        expect(sha256(got[i]!)).toBe(descs[i]!.digest);
      }
      // Again, consumed in an interleaved order through async iterators.
      const iters = descs.map((d) => reader.openBlob(d)[Symbol.asyncIterator]());
      const hashes = descs.map(() => createHash('sha256'));
      let open = iters.length;
      const done = new Array<boolean>(iters.length).fill(false);
      while (open > 0) {
        for (let i = iters.length - 1; i >= 0; i--) {
          if (done[i]) continue;
          const r = await iters[i]!.next();
          if (r.done) {
            done[i] = true;
            open--;
          } else hashes[i]!.update(r.value as Buffer);
        }
      }
      expect(hashes.map((h) => `sha256:${h.digest('hex')}`)).toEqual(descs.map((d) => d.digest));
    } finally {
      await reader.close();
    }
  });

  it('says what is wrong with something that is not a bundle', async () => {
    const { parts } = minimal();
    const noLayout = await tarFile(rawTar([parts[1]!]));
    expect((await rejection(openBundle(noLayout))).message).toBe(
      `${noLayout} is not a bundle: it has no oci-layout file (a bundle is an OCI image layout: oci-layout, index.json and blobs/)`,
    );
    const noIndex = await tarFile(rawTar([parts[0]!]));
    expect((await rejection(openBundle(noIndex))).message).toBe(`${noIndex} is not a bundle: it has no index.json`);
    const badLayout = await tarFile(rawTar([rawEntry({ name: 'oci-layout', data: Buffer.from('{}') }), parts[1]!]));
    expect((await rejection(openBundle(badLayout))).message).toBe(`${badLayout} is not a bundle: its oci-layout file is not JSON with an imageLayoutVersion`);
    const badIndex = await tarFile(rawTar([parts[0]!, rawEntry({ name: 'index.json', data: Buffer.from('{"schemaVersion":2}') })]));
    expect((await rejection(openBundle(badIndex))).message).toMatch(
      new RegExp(`^${badIndex.replace(/[.]/g, '\\.')} is not a bundle: its index\\.json is not a valid OCI image index \\(at manifests: `),
    );
    const badFerry = await tarFile(rawTar([...parts, rawEntry({ name: 'ferry.json', data: Buffer.from('{"formatVersion":1}') })]));
    expect((await rejection(openBundle(badFerry))).message).toMatch(`${badFerry} is not a valid ferry bundle: ferry.json is not valid at`);
    const future = await tarFile(rawTar([...parts, rawEntry({ name: 'ferry.json', data: Buffer.from('{"formatVersion":3}') })]));
    expect((await rejection(openBundle(future))).message).toBe(
      `${future} is a bundle of format version 3; this ferry reads format versions up to 2: upgrade ferry`,
    );
    const emptyDir = join(tmp, 'empty-dir');
    await mkdir(emptyDir);
    expect((await rejection(openBundle(emptyDir))).message).toMatch(`${emptyDir} is not a bundle: it has no oci-layout file`);
    const missing = join(tmp, 'nope.tar');
    const err = await rejection(openBundle(missing));
    expect(err.kind).toBe('usage');
    expect(err.message).toBe(`bundle ${missing} does not exist`);
  });

  it('reads the bundle writer header encoding with directory entries in place', async () => {
    const { parts, blob, digest } = minimal();
    void parts;
    const file = await tarFile(
      Buffer.concat([
        writerEntry('oci-layout', OCI_LAYOUT),
        writerEntry('index.json', indexJson([])),
        writerDir('blobs/'),
        writerDir('blobs/sha256/'),
        writerEntry(`blobs/sha256/${hexOf(digest)}`, blob),
        TAR_END_OF_ARCHIVE,
      ]),
    );
    const reader = await openBundle(file);
    try {
      expect((await reader.readBlob({ digest, size: blob.length })).equals(blob)).toBe(true);
    } finally {
      await reader.close();
    }
  });
});
