/**
 * Progress for transfers: a live line on a TTY (bytes, rate, ETA, images done),
 * plain log lines otherwise. Always on stderr; silent with --quiet or --json.
 */
import type { CopyEvent } from '@ferry/oci-client';
import { formatBytes, formatDuration, shortDigest } from './format.js';

export class Progress {
  private totalBytes = 0;
  private doneBytes = 0;
  private images = 0;
  private imagesDone = 0;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly live: boolean;
  private stopped = false;

  /**
   * `download`: the blobs come from a registry into a file (pack), so a moved blob
   * is "downloaded"; otherwise it went to a registry ("uploaded").
   */
  constructor(
    private readonly enabled: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly direction: 'upload' | 'download' = 'upload',
  ) {
    this.live = enabled && out.isTTY === true;
    if (this.live) this.timer = setInterval(() => this.draw(), 200).unref();
  }

  /** Adds expected work (bytes that may cross the network). */
  expect(images: number, bytes: number): void {
    this.images += images;
    this.totalBytes += bytes;
  }

  readonly onEvent = (e: CopyEvent): void => {
    switch (e.type) {
      case 'blob-progress':
        this.doneBytes += e.bytes;
        break;
      case 'blob-done':
        // A skipped or mounted blob is work done without bytes moving.
        if (e.outcome !== 'uploaded') this.totalBytes -= e.size;
        this.line(
          `blob ${shortDigest(e.digest)} ${formatBytes(e.size)} ${e.outcome === 'uploaded' && this.direction === 'download' ? 'downloaded' : e.outcome}`,
        );
        break;
      case 'image-done':
        this.imagesDone++;
        this.line(`image ${e.image} done (${shortDigest(e.digest)})`);
        break;
      case 'image-start':
        break;
    }
  };

  private line(text: string): void {
    if (!this.enabled || this.live) return;
    this.out.write(`${text}\n`);
  }

  private draw(): void {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? this.doneBytes / secs : 0;
    const left = Math.max(0, this.totalBytes - this.doneBytes);
    const eta = rate > 0 ? formatDuration(left / rate) : '?';
    const text = `${formatBytes(this.doneBytes)} / ${formatBytes(Math.max(this.totalBytes, this.doneBytes))}  ${formatBytes(rate)}/s  ETA ${eta}  images ${this.imagesDone}/${this.images}`;
    this.out.write(`\r\x1b[2K${text}`);
  }

  /** Ends the live line (once; later calls do nothing). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.live) {
      this.draw();
      this.out.write('\n');
    }
  }
}
