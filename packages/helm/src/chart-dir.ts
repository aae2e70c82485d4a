/**
 * The files of a chart directory, as helm's loader reads them (pkg/chart/loader
 * LoadDir, which `helm template`, `helm install` and `helm package` all use):
 * the chart root's `.helmignore` applied to every path below it (subcharts'
 * own .helmignore files are plain files, as in helm), an ignored directory
 * skipped whole, symbolic links followed, a broken link or an irregular file
 * (device, socket, FIFO) that is not ignored an error. Both `ferry images` and
 * `ferry pack --chart` read a directory through this one walk, so they see the
 * same files.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { usageError } from '@ferry/oci-client';
import { helmIgnores, parseHelmignore } from './helmignore.js';

/** Helm's limit on a chart, uncompressed. */
export const MAX_CHART_BYTES = 100 * 1024 * 1024;

/** Posix paths relative to the chart root, in byte order, and each file's bytes. */
export async function chartDirectoryFiles(root: string): Promise<Map<string, Buffer>> {
  let ignoreText = '';
  try {
    ignoreText = await readFile(join(root, '.helmignore'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw usageError(`${root}/.helmignore cannot be read: ${(e as Error).message}`);
  }
  const rules = parseHelmignore(ignoreText, root);
  const files = new Map<string, Buffer>();
  let total = 0;
  /** `ancestors`: the real paths of the directories above, to stop a link that loops back. */
  const walk = async (dir: string, rel: string, ancestors: readonly string[]): Promise<void> => {
    const real = await realpath(dir);
    if (ancestors.includes(real)) return; // helm would follow the loop forever
    const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const full = join(dir, name);
      const path = rel === '' ? name : `${rel}/${name}`;
      const s = await stat(full).catch(() => undefined); // follows links
      if (!s) throw usageError(`${root}: ${path} is a broken symbolic link; helm cannot read it either`);
      if (helmIgnores(rules, path, s.isDirectory())) continue;
      if (s.isDirectory()) await walk(full, path, [...ancestors, real]);
      else if (s.isFile()) {
        const tooLarge = () => usageError(`${root}: the chart is larger than ${MAX_CHART_BYTES / 1024 / 1024} MiB`);
        if (total + s.size > MAX_CHART_BYTES) throw tooLarge();
        const data = await readFile(full);
        total += data.length;
        if (total > MAX_CHART_BYTES) throw tooLarge();
        files.set(path, data);
      } else {
        throw usageError(`${root}: ${path} is not a regular file (a device, socket or pipe); remove it or list it in .helmignore`);
      }
    }
  };
  await walk(root, '', []);
  return files;
}
