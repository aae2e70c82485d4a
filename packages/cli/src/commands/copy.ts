/** `ferry copy SRC DST [--platform LIST]`: one image, every platform, registry to registry. */
import { CopyEngine, formatReference, parsePlatformList, parseReference, planImage, RegistryPlace, usageError } from '@ferry/oci-client';
import type { Context } from '../context.js';
import { shortDigest } from '../format.js';
import { Progress } from '../progress.js';

export interface CopyOptions {
  platform?: string;
  jobs: number;
}

export async function copyCommand(ctx: Context, src: string, dst: string, opts: CopyOptions): Promise<void> {
  const from = parseReference(src);
  const to = parseReference(dst);
  const platforms = opts.platform ? parsePlatformList(opts.platform) : undefined;
  const client = ctx.client();
  const started = Date.now();
  const progress = new Progress(!ctx.opts.quiet && !ctx.opts.json);
  try {
    const source = new RegistryPlace(client.registry(from.registry), from.repository);
    const sink = new RegistryPlace(client.registry(to.registry), to.repository).forWriting();
    const plan = await planImage(source, from.digest ?? from.tag!, { platforms });
    if (plan.filtered) {
      ctx.log(
        `filtered ${formatReference(from)} to ${plan.platforms.join(', ')}: new index ${shortDigest(plan.root.digest)} (upstream ${shortDigest(plan.upstreamDigest)})`,
      );
    }
    if (to.digest && !to.tag && to.digest !== plan.root.digest) {
      throw usageError(`destination ${dst} names digest ${to.digest}, but the copied image is ${plan.root.digest}`);
    }
    progress.expect(
      1,
      plan.blobs.reduce((n, b) => n + b.size, 0),
    );
    const engine = new CopyEngine({ concurrency: opts.jobs, onEvent: progress.onEvent });
    await engine.copy(source, sink, plan, to.tag);
    progress.stop();
    const target = `${to.registry}/${to.repository}${to.tag ? `:${to.tag}` : ''}@${plan.root.digest}`;
    ctx.result(target, {
      source: formatReference(from),
      destination: target,
      digest: plan.root.digest,
      upstreamDigest: plan.upstreamDigest,
      mediaType: plan.root.mediaType,
      platforms: plan.platforms,
      blobs: { uploaded: engine.stats.uploaded, mounted: engine.stats.mounted, skipped: engine.stats.skipped },
      bytes: engine.stats.bytes,
      seconds: (Date.now() - started) / 1000,
    });
  } finally {
    progress.stop();
    await client.close();
  }
}
