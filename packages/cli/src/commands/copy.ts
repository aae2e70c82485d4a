/** `ferry copy SRC DST [--platform LIST] [--referrers MODE]`: one image, every platform, its referrers, registry to registry. */
import { copyImage } from '@ferry/bundler';
import { parsePlatformList, type ReferrerMode } from '@ferry/oci-client';
import type { Context } from '../context.js';
import { Progress } from '../progress.js';

export interface CopyOptions {
  platform?: string;
  referrers?: ReferrerMode;
  referrersType?: string[];
  jobs: number;
}

export async function copyCommand(ctx: Context, src: string, dst: string, opts: CopyOptions): Promise<void> {
  const platforms = opts.platform ? parsePlatformList(opts.platform) : undefined;
  const client = ctx.client();
  const started = Date.now();
  const progress = new Progress(!ctx.opts.quiet && !ctx.opts.json);
  try {
    const r = await copyImage({
      client,
      source: src,
      destination: dst,
      platforms,
      referrers: opts.referrers,
      referrersType: opts.referrersType,
      jobs: opts.jobs,
      signal: ctx.signal,
      onEvent: progress.onEvent,
      onPlanned: (p) => progress.expect(1, p.bytes),
      log: (line) => ctx.log(line),
    });
    progress.stop();
    ctx.result(r.destination, {
      source: r.source,
      destination: r.destination,
      digest: r.digest,
      upstreamDigest: r.upstreamDigest,
      mediaType: r.mediaType,
      platforms: r.platforms,
      referrers: r.referrers,
      blobs: { uploaded: r.stats.uploaded, mounted: r.stats.mounted, skipped: r.stats.skipped },
      bytes: r.stats.bytes,
      seconds: (Date.now() - started) / 1000,
    });
  } finally {
    progress.stop();
    await client.close();
  }
}
