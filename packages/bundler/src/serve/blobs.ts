/**
 * Serving blobs from the bundle files so that a damaged bundle never hands out
 * a wrong byte: every blob is digest-checked once (all at start-up with
 * --verify, else when it is first asked for, before a byte of it is sent) and
 * the outcome remembered; a blob that failed is refused from then on. Once
 * checked, a blob is served by positional reads of its bytes and not hashed
 * again (a bundle is read-only input: re-hashing every response doubled the
 * server's CPU, see BENCHMARKS.md "serve"). Streams are capped by one pool (-j)
 * and flow with backpressure, so memory stays bounded whatever the number of clients.
 */
import type { ServerResponse } from 'node:http';
import { pipeline, Writable } from 'node:stream';
import type { Pool } from '@ferry/oci-client';
import type { ByteRange } from '../places/layout-files.js';
import type { BlobLocation } from './content.js';
import { ServeError } from './errors.js';

type State = { ok: true } | { ok: false; error: string };

export class BlobGuard {
  private readonly state = new Map<string, State>();
  private readonly checking = new Map<string, Promise<void>>();

  constructor(
    private readonly blobs: ReadonlyMap<string, BlobLocation>,
    private readonly pool: Pool,
    private readonly log: (line: string) => void,
  ) {}

  /** Checks every blob (through the pool); resolves with the failures, one line each. */
  async verifyAll(): Promise<string[]> {
    await Promise.all([...this.blobs.keys()].map((d) => this.verify(d)));
    return [...this.state.values()].flatMap((s) => (s.ok ? [] : [s.error]));
  }

  /** The failure of a blob already found damaged, as the error to answer with. */
  refusal(digest: string): ServeError | undefined {
    const s = this.state.get(digest);
    if (!s || s.ok) return undefined;
    return new ServeError('UNKNOWN', `blob ${digest} failed its digest check in the bundle; ferry serve does not serve it`, { digest });
  }

  isVerified(digest: string): boolean {
    return this.state.get(digest)?.ok === true;
  }

  /** Hashes the whole blob once (concurrent callers share the check). */
  verify(digest: string): Promise<void> {
    if (this.state.has(digest)) return Promise.resolve();
    let p = this.checking.get(digest);
    if (!p) {
      p = this.pool(
        () =>
          new Promise<void>((resolve) => {
            const at = this.blobs.get(digest)!;
            let stream: ReturnType<typeof at.bundle.openBlob>;
            try {
              stream = at.bundle.openBlob({ digest, size: at.size });
            } catch (e) {
              this.fail(digest, e);
              resolve();
              return;
            }
            const sink = new Writable({ write: (_c, _e, done) => done() });
            pipeline(stream, sink, (e) => {
              if (e) this.fail(digest, e);
              else this.state.set(digest, { ok: true });
              resolve();
            });
          }),
      ).finally(() => this.checking.delete(digest));
      this.checking.set(digest, p);
    }
    return p;
  }

  /**
   * Streams the blob (or `range` of it) into `res`, headers already written
   * by the caller through `start`. Holds a pool slot until the response ends.
   */
  async send(digest: string, res: ServerResponse, range: ByteRange | undefined, start: () => void): Promise<void> {
    if (!this.isVerified(digest)) await this.verify(digest);
    const refused = this.refusal(digest);
    if (refused) throw refused;
    const at = this.blobs.get(digest)!;
    await this.pool(async () => {
      if (res.destroyed) return;
      start();
      try {
        // Checked above: the bytes, whole or a range, by positional reads without a second hash.
        await at.bundle.sendBlobRange({ digest, size: at.size }, range ?? { start: 0, end: at.size - 1 }, res);
        res.end();
      } catch {
        // A short read (the file cut under the server) or a closed connection: the client never sees a complete wrong body.
        if (!res.destroyed) res.destroy();
      }
    });
  }

  private fail(digest: string, e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    if (!this.state.has(digest) || this.state.get(digest)!.ok) this.log(`ferry serve: blob ${digest} is damaged and will not be served: ${message}`);
    this.state.set(digest, { ok: false, error: message });
  }
}
