/**
 * An OCI image layout directory (`oci:` in skopeo's terms) as layout files for
 * the bundle reader. Nothing is followed through a symbolic link: a link, or
 * anything not a regular file, where a layout file or blob should be is refused.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { usageError } from '@ferry/oci-client';
import { readFully } from './bundle-tar.js';
import { type LayoutFiles, READ_CHUNK } from './layout-files.js';
import { classifyName } from './tar-index.js';

export async function openLayoutDir(path: string): Promise<LayoutFiles> {
  const files = new Map<string, string>();
  const blobs = new Map<string, number>();
  for (const alg of ['sha256', 'sha512']) {
    const dir = join(path, 'blobs', alg);
    let list: import('node:fs').Dirent[];
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const d of list) {
      const name = `blobs/${alg}/${d.name}`;
      const cls = classifyName(name);
      if (typeof cls === 'object') throw usageError(`${path} is not a safe bundle: ${name} ${cls.refuse}`);
      if (d.isSymbolicLink()) throw usageError(`${path} is not a safe bundle: ${name} is a symbolic link`);
      if (!d.isFile()) throw usageError(`${path} is not a safe bundle: ${name} is not a regular file`);
      const file = join(dir, d.name);
      files.set(`${alg}:${d.name}`, file);
      blobs.set(`${alg}:${d.name}`, (await lstat(file)).size);
    }
  }
  const fileOf = (digest: string): string => files.get(digest)!;
  return {
    container: 'directory',
    blobs,
    async readFile(name, max) {
      const file = join(path, name);
      let st: import('node:fs').Stats;
      try {
        st = await lstat(file);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) throw usageError(`${path} is not a safe bundle: ${name} is a symbolic link`);
      if (!st.isFile()) throw usageError(`${path} is not a bundle: ${name} is not a regular file`);
      if (st.size > max) throw usageError(`${path} is not a bundle: its ${name} has ${st.size} bytes, more than the ${max} allowed`);
      const buf = Buffer.alloc(st.size);
      await readWhole(file, buf, path, name);
      return buf;
    },
    stream: (digest, range): Readable => createReadStream(fileOf(digest), { highWaterMark: READ_CHUNK, ...range }),
    read: (digest, buf) => readWhole(fileOf(digest), buf, path, digest),
    close: async () => undefined,
  };
}

async function readWhole(file: string, buf: Buffer, label: string, what: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await readFully(fh, buf, 0, label, what);
  } finally {
    await fh.close();
  }
}
