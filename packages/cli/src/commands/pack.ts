/**
 * `ferry pack [IMAGE...] -o BUNDLE [-f LIST]... [--spec FILE] [--chart CHART]... [--repo NAME=URL]... [--chart-version V] [--values FILE]...
 *  [--set K=V]... [--namespace NS] [--kube-version V] [--chart-optional-images] [--only-used] [--skip-image PATTERN]... [--platform LIST] [--referrers MODE] [--referrers-type T]... [-j N]`
 */
import { gatherPackInputs, loadPrivateKey, openBundle, pack, parseSize, sourceDateEpoch } from '@ferry/bundler';
import { parsePlatform, type ReferrerMode, usageError } from '@ferry/oci-client';
import { checkNamespace, helmKubeVersion } from '../chart-flags.js';
import type { Context } from '../context.js';
import { formatBytes } from '../format.js';
import { Progress } from '../progress.js';

export interface PackCommandOptions {
  output?: string;
  file?: string[];
  spec?: string;
  chart?: string[];
  repo?: string[];
  chartVersion?: string;
  dependencyUpdate?: boolean;
  values?: string[];
  set?: string[];
  chartOptionalImages?: boolean;
  onlyUsed?: boolean;
  skipImage?: string[];
  namespace?: string;
  kubeVersion?: string;
  platform?: string;
  referrers?: ReferrerMode;
  referrersType?: string[];
  jobs?: number;
  sign?: string;
  base?: string;
  splitSize?: string;
  dockerPlatform?: string;
}

export async function packCommand(ctx: Context, images: string[], opts: PackCommandOptions): Promise<void> {
  if (opts.namespace !== undefined) checkNamespace(opts.namespace);
  const inputs = await gatherPackInputs({
    images,
    lists: opts.file ?? [],
    spec: opts.spec,
    charts: opts.chart,
    chartVersion: opts.chartVersion,
    dependencyUpdate: opts.dependencyUpdate,
    values: opts.values,
    set: opts.set,
    chartOptionalImages: opts.chartOptionalImages,
    onlyUsed: opts.onlyUsed,
    skipImages: opts.skipImage,
    namespace: opts.namespace,
    kubeVersion: opts.kubeVersion === undefined ? undefined : helmKubeVersion(opts.kubeVersion),
    platform: opts.platform,
    output: opts.output,
    concurrency: opts.jobs,
  });
  if (!inputs.output) throw usageError('pack needs an output file: -o BUNDLE (or output: in the spec)');
  const splitSize = opts.splitSize ? parseSize(opts.splitSize) : undefined;
  const signingKey = opts.sign ? await loadPrivateKey(opts.sign) : undefined;
  const base = opts.base ? await openBundle(opts.base) : undefined;
  const client = ctx.client();
  // the chart engine is loaded only when charts are packed
  const repositories =
    inputs.charts.length > 0
      ? new (await import('@ferry/bundler/charts')).HelmRepositories({
          repoFlags: opts.repo ?? [],
          env: ctx.env,
          transport: ctx.transportOptions(),
          signal: ctx.signal,
        })
      : undefined;
  const progress = new Progress(!ctx.opts.quiet && !ctx.opts.json, process.stderr, 'download');
  const started = Date.now();
  try {
    const result = await pack({
      client,
      references: inputs.references,
      charts: inputs.charts,
      repositories,
      platforms: inputs.platforms,
      referrers: opts.referrers,
      referrersType: opts.referrersType,
      dockerPlatform: opts.dockerPlatform ? parsePlatform(opts.dockerPlatform) : undefined,
      output: inputs.output,
      concurrency: inputs.concurrency,
      signal: ctx.signal,
      sourceDateEpoch: sourceDateEpoch(ctx.env),
      signingKey,
      base,
      splitSize,
      log: (line) => ctx.log(line),
      onPlanned: (p) => progress.expect(p.images, p.bytes),
      onEvent: progress.onEvent,
    });
    progress.stop();
    const t = result.ferry.totals;
    const charts = result.ferry.charts;
    const seconds = (Date.now() - started) / 1000;
    ctx.result(
      [
        ...(result.files.length > 1 ? [`${result.files.length} parts: ${result.files.join(' ')}`] : []),
        `${result.output}: ${t.images} image${t.images === 1 ? '' : 's'}, ${charts.length ? `${charts.length} chart${charts.length === 1 ? '' : 's'}, ` : ''}${t.blobs} blobs, ${formatBytes(t.bytes)} (logical ${formatBytes(t.logicalBytes)})`,
        ...charts.map((c) => `chart ${c.name} ${c.version} (${c.ref}): ${c.images.filter((i) => i.packed).length} of ${c.images.length} images packed`),
        `bundle id ${result.bundleId}`,
        ...(result.ferry.base ? [`delta of ${result.ferry.base.id}: relies on ${result.ferry.base.reliesOn.length} blobs it does not carry`] : []),
      ].join('\n'),
      {
        output: result.output,
        files: result.files,
        bundleId: result.bundleId,
        images: result.ferry.images,
        charts,
        totals: t,
        resumedBlobs: result.resumedBlobs,
        downloadedBytes: result.downloadedBytes,
        seconds,
      },
    );
  } finally {
    progress.stop();
    await base?.close();
    await client.close();
    await repositories?.close();
  }
}
