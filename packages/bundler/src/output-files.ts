/**
 * The files pack writes (`<out>.partial`, its parts, the journal, the lock) are
 * opened so that nothing is ever written through a link: a fresh start removes
 * whatever non-directory stands at the name (unlink never follows a link) and
 * creates the file exclusively; a resume opens with O_NOFOLLOW. One pack at a
 * time writes an output: the second is told which process holds it.
 */
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, usageError } from '@ferry/oci-client';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = constants;

/** A new, empty regular file at `path`, replacing a file or link that stood there. */
export async function createFresh(path: string, flags = O_RDWR): Promise<FileHandle> {
  await removeNonDirectory(path);
  return open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644).catch((e: unknown) => {
    throw refusal(path, e);
  });
}

/** The existing regular file at `path`, for reading and writing; a link is refused. */
export async function openExisting(path: string): Promise<FileHandle> {
  return open(path, O_RDWR | O_NOFOLLOW).catch((e: unknown) => {
    throw refusal(path, e);
  });
}

/** `path` for appending, created when missing; a link is refused. */
export async function openAppend(path: string): Promise<FileHandle> {
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o644).catch((e: unknown) => {
    throw refusal(path, e);
  });
}

/** The size of the regular file at `path`; undefined when there is none (a link is not one). */
export async function regularFileSize(path: string): Promise<number | undefined> {
  const st = await lstat(path).catch(() => undefined);
  return st?.isFile() ? st.size : undefined;
}

/** The text of the regular file at `path`; undefined when there is none. */
export async function readRegularFile(path: string): Promise<string | undefined> {
  if ((await regularFileSize(path)) === undefined) return undefined;
  const fh = await open(path, constants.O_RDONLY | O_NOFOLLOW).catch(() => undefined);
  if (!fh) return undefined;
  try {
    return await readFile(fh, 'utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Writes `text` to `root/rel` (`rel` with `/` separators, no `..`), creating the
 * directories below `root`; a link standing for any of them is refused, and the
 * file replaces whatever file or link stood at its name.
 */
export async function writeFileUnder(root: string, rel: string, text: string): Promise<void> {
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw usageError(`internal: ${rel} is not a path below ${root}`);
  let dir = root;
  for (const part of ['', ...parts.slice(0, -1)]) {
    dir = part ? join(dir, part) : dir;
    const st = await lstat(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOTDIR') throw usageError(`${dir}: a part of this path is not a directory; ferry writes files below it only in a real directory`);
      return undefined;
    });
    if (!st) await mkdir(dir);
    else if (!st.isDirectory())
      throw usageError(`${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; ferry writes files below it only in a real directory`);
  }
  // Through a fresh temporary name, renamed over the file: a reader never sees half of it.
  const path = join(dir, parts.at(-1)!);
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await createFresh(tmp, O_WRONLY);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
  await removeDirectoryRefusal(path);
  await rename(tmp, path);
}

/** rename() would replace an empty directory: refuse any directory at the name, as a fresh create does. */
async function removeDirectoryRefusal(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st?.isDirectory()) throw usageError(`${path} is a directory; ferry writes a file there: move it away`);
}

async function removeNonDirectory(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory()) throw usageError(`${path} is a directory; ferry writes a file there: move it away`);
  await rm(path, { force: true });
}

function refusal(path: string, e: unknown): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return usageError(`${path} is a symbolic link; ferry does not write through links: remove it`);
  if (code === 'EEXIST') return new FerryError('io', `${path} appeared while ferry was creating it; is another ferry writing there?`);
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Takes `<out>.partial.lock` for this process; returns its release. A lock left
 * by a process that no longer runs (a kill -9) is taken over.
 */
export async function lockOutput(out: string): Promise<() => Promise<void>> {
  const lock = `${out}.partial.lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
      await fh.write(`${process.pid}\n`);
      await fh.close();
      return () => rm(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw refusal(lock, e);
    }
    const holder = Number.parseInt((await readRegularFile(lock)) ?? '', 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new FerryError('io', `another ferry pack (process ${holder}) is writing ${out}; wait for it to end, or stop it and run this again`);
    }
    await rm(lock, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
