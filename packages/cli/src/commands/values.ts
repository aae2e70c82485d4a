/**
 * `ferry values BUNDLE --to REGISTRY[/PREFIX] -o DIR [--map SRC=DST]... [--keep-source-registry] [--values FILE]... [--set K=V]...
 *  [--namespace NS] [--kube-version V]`:
 * for every chart of the bundle, `DIR/<chart>.yaml`, the Helm values that make
 * it pull its images from where `load` with that mapping puts them; offline,
 * nothing pushed. `load --values-out DIR` writes the same files after a load,
 * `images --chart C --to MIRROR --values-out DIR` for a chart not carried.
 */

import type { BundleReader } from '@ferry/bundler';
import { openBundle, TargetMapper } from '@ferry/bundler';
import type { DiscoveryResult } from '@ferry/bundler/charts';
import type { ChartValues, ChartValuesOptions } from '@ferry/bundler/values';
import { checkNamespace, helmKubeVersion } from '../chart-flags.js';
import type { Context } from '../context.js';

export interface ValuesCommandOptions {
  to: string;
  output: string;
  map?: string[];
  keepSourceRegistry?: boolean;
  /** The values files and --set expressions the charts will be installed with. */
  values?: string[];
  set?: string[];
  /** The release namespace and Kubernetes version the charts will be installed with. */
  namespace?: string;
  kubeVersion?: string;
}

/** What a command reports of the files it wrote. */
export interface ValuesWritten {
  dir: string;
  files: Array<{ chart: string; file: string; moved: ChartValues['moved']; unmoved: ChartValues['unmoved'] }>;
}

async function report(ctx: Context, dir: string, written: ChartValues[]): Promise<ValuesWritten> {
  const { unmovedLine } = await import('@ferry/bundler/values');
  for (const v of written) {
    ctx.log(`values: ${dir}/${v.file}: ${v.moved.length} image${v.moved.length === 1 ? '' : 's'} moved to the mirror`);
    for (const u of v.unmoved) ctx.log(`warning: values: ${unmovedLine(v.chart, u)}`);
  }
  return { dir, files: written.map((v) => ({ chart: v.chart, file: `${dir}/${v.file}`, moved: v.moved, unmoved: v.unmoved })) };
}

/** The values files of a bundle's charts under `dir`; says on stderr what they leave in place. */
export async function writeBundleValues(
  ctx: Context,
  dir: string,
  bundle: BundleReader,
  mapper: TargetMapper,
  install: Pick<ChartValuesOptions, 'valuesFiles' | 'set' | 'namespace' | 'kubeVersion'> = {},
): Promise<ValuesWritten> {
  const { bundleCharts, bundleHoldings, writeChartValues } = await import('@ferry/bundler/values');
  const charts = await bundleCharts(bundle);
  if (charts.length === 0) ctx.log(`values: ${bundle.name} carries no Helm chart; no values file written`);
  return report(ctx, dir, await writeChartValues(dir, charts, { mapper, ...bundleHoldings(bundle), ...install }));
}

/** The values files of charts read by `ferry images` (not carried in a bundle: every image taken as mirrored). */
export async function writeLoadedChartValues(ctx: Context, dir: string, charts: DiscoveryResult['loaded'], opts: ChartValuesOptions): Promise<ValuesWritten> {
  const { writeChartValues } = await import('@ferry/bundler/values');
  return report(ctx, dir, await writeChartValues(dir, charts, opts));
}

export async function valuesCommand(ctx: Context, bundlePath: string, opts: ValuesCommandOptions): Promise<void> {
  if (opts.namespace !== undefined) checkNamespace(opts.namespace);
  const kubeVersion = opts.kubeVersion === undefined ? undefined : helmKubeVersion(opts.kubeVersion);
  const mapper = new TargetMapper({ to: opts.to, keepSourceRegistry: opts.keepSourceRegistry, maps: opts.map });
  const bundle = await openBundle(bundlePath);
  try {
    const written = await writeBundleValues(ctx, opts.output, bundle, mapper, {
      valuesFiles: opts.values,
      set: opts.set,
      namespace: opts.namespace,
      kubeVersion,
    });
    ctx.result(written.files.map((f) => f.file).join('\n'), written);
  } finally {
    await bundle.close();
  }
}
