/**
 * The bundle being written, as a copy-engine sink. The file `<out>.partial` is
 * created at its final size; each blob streams into its own region by
 * positional writes. A journal beside it lists finished blobs, so a rerun of the
 * same pack re-checks them on disk and fetches only the rest. The final name
 * appears only after every blob is in place and checked.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, rename, rm } from 'node:fs/promises';
import {
  abortReason,
  type BlobOutcome,
  type Descriptor,
  FerryError,
  type ImageSink,
  type OpenBlob,
  type ParsedManifest,
  parseDigest,
  TAR_END_OF_ARCHIVE,
} from '@ferry/oci-client';
import pLimit from 'p-limit';
import { createFresh, lockOutput, openAppend, openExisting, readRegularFile, regularFileSize } from '../output-files.js';
import { type PositionalFile, partName, SplitFile } from '../split-files.js';
import type { BundleLayout, LayoutEntry } from '../tar-plan.js';

/** The files a bundle is written as: one, or parts of at most `partSize` bytes. */
function outputFiles(out: string, total: number, partSize: number | undefined): Array<{ partial: string; final: string; size: number }> {
  if (!partSize) return [{ partial: `${out}.partial`, final: out, size: total }];
  const files = [];
  for (let i = 0, start = 0; start < total; i++, start += partSize) {
    files.push({ partial: `${partName(out, i)}.partial`, final: partName(out, i), size: Math.min(partSize, total - start) });
  }
  return files;
}

/** Bytes gathered into one positional write. */
const WRITE_BATCH = 1024 * 1024;
/** Headers and metadata written at once when the bundle is opened. */
const FIXED_WRITES = 16;

interface JournalHead {
  fingerprint: string;
  created: string;
}

export class BundleWriter implements ImageSink {
  readonly name: string;
  readonly location = undefined;
  private readonly finished = new Set<string>();
  private readonly journal: string;
  private journalHandle: FileHandle | undefined;
  private journalWrites: Promise<void> = Promise.resolve();
  /** Journal lines not yet handed to a write. */
  private journalLines: string[] = [];
  private journalFailure: unknown;
  /** Set once finished or abandoned: nothing more is written. */
  private closed = false;

  private constructor(
    out: string,
    private readonly layout: BundleLayout,
    private readonly fh: PositionalFile,
    private readonly files: Array<{ partial: string; final: string }>,
    finished: Iterable<string>,
    /** Stops the writer: transfers under way fail at their next chunk (the first failure of a pack, or Ctrl-C). */
    private readonly signal: AbortSignal | undefined,
    /** Releases the output's lock. */
    private readonly release: () => Promise<void>,
  ) {
    this.name = out;
    this.journal = `${out}.partial.journal`;
    for (const d of finished) this.finished.add(d);
  }

  /**
   * The journal head of an earlier, unfinished run of the same plan, if any: its
   * creation time is reused so the resumed bundle equals an uninterrupted one.
   */
  static async previousRun(out: string, fingerprint: string): Promise<JournalHead | undefined> {
    const head = (await readJournal(`${out}.partial.journal`))?.head;
    return head?.fingerprint === fingerprint ? head : undefined;
  }

  /**
   * Opens `<out>.partial` (or the `.partial` parts of a split bundle), keeping blobs
   * a previous run of this plan finished, after re-hashing them.
   */
  static async open(
    out: string,
    layout: BundleLayout,
    head: JournalHead,
    opts: { partSize?: number | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<BundleWriter> {
    const { partSize } = opts;
    const files = outputFiles(out, layout.totalSize, partSize);
    const journalPath = `${out}.partial.journal`;
    const release = await lockOutput(out);
    let fh: PositionalFile | undefined;
    try {
      const previous = await readJournal(journalPath);
      const sizes = await Promise.all(files.map((f) => regularFileSize(f.partial)));
      const resuming = previous?.head.fingerprint === head.fingerprint && files.every((f, i) => sizes[i] === f.size);
      if (!partSize) {
        fh = resuming ? await openExisting(files[0]!.partial) : await createFresh(files[0]!.partial);
        if (!resuming) await fh.truncate(layout.totalSize);
      } else {
        const paths = files.map((f) => f.partial);
        fh = resuming ? await SplitFile.open(paths, 'r+') : await SplitFile.create(paths, layout.totalSize, partSize);
      }
      let kept: string[] = [];
      if (resuming) {
        kept = await verifyOnDisk(fh, layout, previous!.done);
      } else {
        const journal = await createFresh(journalPath, constants.O_WRONLY);
        await journal.write(`${JSON.stringify(head)}\n`);
        await journal.close();
      }
      const w = new BundleWriter(out, layout, fh, files, kept, opts.signal, release);
      await w.writeFixedParts();
      return w;
    } catch (e) {
      await fh?.close();
      await release();
      throw e;
    }
  }

  /** Headers, metadata files, manifests known at plan time, and the end-of-archive blocks. */
  private async writeFixedParts(): Promise<void> {
    // Positional writes of disjoint regions, several at once: one at a time, the
    // 2 × 1500 thread-pool round trips of 1500 small blobs' headers cost ~0.2 s.
    const limit = pLimit(FIXED_WRITES);
    const writes: Array<Promise<unknown>> = [];
    const write = (b: Buffer, at: number): void => void writes.push(limit(() => this.fh.write(b, 0, b.length, at)));
    for (const e of this.layout.entries) {
      write(e.header, e.headerOffset);
      if (!e.digest && e.bytes) write(e.bytes, e.dataOffset);
    }
    write(TAR_END_OF_ARCHIVE, this.layout.endOffset);
    const results = await Promise.allSettled(writes);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  get finishedCount(): number {
    return this.finished.size;
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.finished.has(desc.digest);
  }

  async putBlob(desc: Descriptor, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome> {
    const entry = this.entry(desc.digest);
    if (this.finished.has(desc.digest)) return 'skipped';
    this.checkOpen(signal);
    const stream = await open();
    const end = entry.dataOffset + entry.size;
    let pos = entry.dataOffset;
    // Chunks are gathered into writes of about WRITE_BATCH bytes, at most two in flight:
    // far fewer system calls than a write per network chunk, and the network keeps flowing.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const inFlight: Array<Promise<void>> = [];
    let writeFailure: unknown;
    const flush = async (): Promise<void> => {
      if (writeFailure !== undefined) throw writeFailure;
      if (batchBytes === 0) return;
      if (inFlight.length >= 2) await inFlight.shift();
      // Failures are kept (not left unhandled) and raised at the next flush.
      inFlight.push(this.writeAll(batch, pos - batchBytes, batchBytes).catch((e: unknown) => void (writeFailure ??= e)));
      batch = [];
      batchBytes = 0;
    };
    try {
      // The stream is digest-checked by its source; a mismatch throws here and nothing is journaled.
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        this.checkOpen(signal);
        if (pos + chunk.length > end) {
          throw new FerryError('integrity', `blob ${desc.digest} is larger than its descriptor says (${entry.size} bytes)`);
        }
        batch.push(chunk);
        batchBytes += chunk.length;
        pos += chunk.length;
        if (batchBytes >= WRITE_BATCH) await flush();
      }
      await flush();
    } catch (e) {
      stream.destroy();
      throw e;
    } finally {
      await Promise.all(inFlight);
    }
    if (writeFailure !== undefined) throw writeFailure;
    if (pos !== end) {
      throw new FerryError('integrity', `blob ${desc.digest} has ${pos - entry.dataOffset} bytes, its descriptor says ${entry.size}`);
    }
    this.markDone(desc.digest);
    return 'uploaded';
  }

  async putManifest(m: ParsedManifest): Promise<void> {
    if (this.finished.has(m.digest)) return;
    this.checkOpen();
    const entry = this.entry(m.digest);
    await this.writeAll([Buffer.from(m.bytes)], entry.dataOffset, m.bytes.byteLength);
    this.markDone(m.digest);
  }

  /** A positional write of every byte; a short write (a full disk) is an error, never a hole. */
  private async writeAll(buffers: Buffer[], position: number, length: number): Promise<void> {
    const r = (await this.fh.writev(buffers, position)) as { bytesWritten?: number } | undefined;
    const written = r?.bytesWritten ?? length;
    if (written !== length) {
      throw new FerryError('io', `writing ${this.name}.partial failed: ${written} of ${length} bytes written at offset ${position} (is the disk full?)`);
    }
  }

  /** Once stopped or closed, transfers still running stop at their next chunk. */
  private checkOpen(signal?: AbortSignal): void {
    for (const s of [this.signal, signal]) if (s?.aborted) throw abortReason(s);
    if (this.closed) throw new FerryError('io', `${this.name} is being abandoned`);
  }

  private entry(digest: string): LayoutEntry {
    const e = this.layout.blobs.get(digest);
    if (!e) throw new Error(`blob ${digest} is not in the bundle plan`);
    return e;
  }

  /**
   * Records a finished blob. Journal lines are appended in order on one open
   * handle, off the transfer's critical path; a line lost to a kill only means
   * that blob is fetched again on resume.
   */
  private markDone(digest: string): void {
    if (this.closed) return;
    this.finished.add(digest);
    this.journalLines.push(`${JSON.stringify({ done: digest })}\n`);
    if (this.journalLines.length > 1) return; // a write is queued and will take this line too
    // Lines that arrive while a write is under way go out together in the next one:
    // a write per blob is 1500 thread-pool round trips for 1500 small blobs.
    this.journalWrites = this.journalWrites.then(async () => {
      const text = this.journalLines.join('');
      this.journalLines = [];
      this.journalHandle ??= await openAppend(this.journal);
      await this.journalHandle.write(text);
    });
    // Kept for finish(), never left unhandled.
    this.journalWrites.catch((e: unknown) => void (this.journalFailure ??= e));
  }

  private async closeJournal(): Promise<void> {
    await this.journalWrites.catch(() => undefined);
    await this.journalHandle?.close();
    this.journalHandle = undefined;
    if (this.journalFailure !== undefined) throw this.journalFailure;
  }

  /** Checks every blob is in place, syncs, and renames the `.partial` file(s) to the final name(s). */
  async finish(): Promise<string[]> {
    this.checkOpen();
    const missing = [...this.layout.blobs.keys()].filter((d) => !this.finished.has(d));
    if (missing.length) throw new Error(`bundle incomplete: ${missing.length} blobs not written (first ${missing[0]})`);
    await this.closeJournal();
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
    for (const f of this.files) await rename(f.partial, f.final);
    await this.removeStaleParts();
    await rm(this.journal, { force: true });
    await this.release();
    return this.files.map((f) => f.final);
  }

  /** Parts beyond the last of this bundle, left by an earlier pack with more of them, would join `cat X.part-*`. */
  private async removeStaleParts(): Promise<void> {
    if (this.files.length < 2 && !this.files[0]?.final.endsWith('.part-000')) return;
    for (let i = this.files.length; ; i++) {
      const stale = partName(this.name, i);
      if ((await lstat(stale).catch(() => undefined)) === undefined) return;
      await rm(stale, { force: true });
    }
  }

  /** Closes the file, leaving `<out>.partial` and its journal for a rerun to resume. */
  async abandon(): Promise<void> {
    this.closed = true;
    await this.closeJournal().catch(() => undefined);
    await this.fh.close().catch(() => undefined);
    await this.release();
  }
}

async function readJournal(path: string): Promise<{ head: JournalHead; done: string[] } | undefined> {
  let text: string;
  try {
    const read = await readRegularFile(path);
    if (read === undefined) return undefined;
    text = read;
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  let head: JournalHead | undefined;
  const done: string[] = [];
  for (const line of lines) {
    if (!line) continue;
    try {
      const v = JSON.parse(line) as Partial<JournalHead> & { done?: string };
      if (!head && v.fingerprint && v.created) head = { fingerprint: v.fingerprint, created: v.created };
      else if (v.done) done.push(v.done);
    } catch {
      // A line torn by a kill: ignore it, the blob will be fetched again.
    }
  }
  return head ? { head, done } : undefined;
}

/** Re-hashes the regions of blobs a previous run finished; keeps those still intact. */
async function verifyOnDisk(fh: PositionalFile, layout: BundleLayout, done: string[]): Promise<string[]> {
  const limit = pLimit(4);
  const results = await Promise.all(
    [...new Set(done)].map((digest) =>
      limit(async () => {
        const e = layout.blobs.get(digest);
        if (!e) return undefined;
        const hash = createHash(parseDigest(digest).algorithm);
        const buf = Buffer.allocUnsafe(Math.min(e.size, 1024 * 1024) || 1);
        for (let pos = 0; pos < e.size; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, e.size - pos), e.dataOffset + pos);
          if (bytesRead === 0) return undefined;
          hash.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        return `${parseDigest(digest).algorithm}:${hash.digest('hex')}` === digest ? digest : undefined;
      }),
    ),
  );
  return results.filter((d): d is string => d !== undefined);
}
