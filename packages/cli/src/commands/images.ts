/**
 * `ferry images [--chart CHART]... [--repo NAME=URL]... [--chart-version V] [-f RENDERED_YAML|-] [--values FILE]... [--set K=V]...
 *               [--check LIST] [--optional | --only-used] [--skip-image PATTERN]...`
 *
 * Prints the images a Helm chart needs (sorted, normalized, one a line; those
 * outside pod specs labelled with their class as a comment), or with
 * --check compares them with a list file and exits 1 when the list lacks a used one.
 */
import { readFile } from 'node:fs/promises';
import { TargetMapper } from '@ferry/bundler';
import { HelmRepositories, imagesReport, type RenderedInput } from '@ferry/bundler/charts';
import { type OciClient, usageError } from '@ferry/oci-client';
import { checkNamespace, helmKubeVersion } from '../chart-flags.js';
import type { Context } from '../context.js';
import { writeLoadedChartValues } from './values.js';

export interface ImagesCommandOptions {
  /** Chart directories, .tgz files, oci://REGISTRY/REPO[:VERSION], REPO/CHART[@VERSION] or chart URLs (repeatable). */
  chart?: string[];
  /** --repo NAME=URL (repeatable). */
  repo?: string[];
  /** --chart-version: for repository charts. */
  chartVersion?: string;
  /** --dependency-update: fetch unvendored dependencies of chart directories. */
  dependencyUpdate?: boolean;
  /** Rendered manifests (`helm template` output), `-` for standard input. */
  file?: string | string[];
  /** Values files, in order (repeatable). */
  values?: string[];
  /** --set KEY=VALUE (repeatable). */
  set?: string[];
  /** --namespace: the release namespace. */
  namespace?: string;
  /** --kube-version: .Capabilities.KubeVersion. */
  kubeVersion?: string;
  /** A list file to check against. */
  check?: string;
  /** List optional images too. */
  optional?: boolean;
  /** --to MIRROR: where the images are mirrored (with --values-out). */
  to?: string;
  /** --values-out DIR: a values file per chart pointing it at --to. */
  valuesOut?: string;
  map?: string[];
  keepSourceRegistry?: boolean;
  /** List only the images of pod specs. */
  onlyUsed?: boolean;
  /** --skip-image PATTERN (repeatable). */
  skipImage?: string[];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function readInput(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function imagesCommand(ctx: Context, opts: ImagesCommandOptions): Promise<void> {
  const charts = opts.chart ?? [];
  const files = opts.file === undefined ? [] : Array.isArray(opts.file) ? opts.file : [opts.file];
  if (charts.length === 0 && files.length === 0) {
    throw usageError('images needs a chart (--chart DIR|FILE.tgz|oci://REGISTRY/REPO[:VERSION]) or rendered manifests (-f FILE, - for stdin)');
  }
  if (files.filter((f) => f === '-').length > 1) throw usageError('standard input (-f -) can be read only once');
  if ((opts.values?.length || opts.set?.length) && charts.length === 0) {
    throw usageError('--values and --set apply to charts; give --chart too');
  }

  const rendered: RenderedInput[] = [];
  for (const f of files) rendered.push({ name: f === '-' ? 'stdin' : f, text: f === '-' ? await readStdin() : await readInput(f, 'rendered manifests') });
  const check = opts.check ? { name: opts.check, text: await readInput(opts.check, 'image list') } : undefined;

  const kubeVersion = opts.kubeVersion === undefined ? undefined : helmKubeVersion(opts.kubeVersion);
  if (opts.namespace !== undefined) checkNamespace(opts.namespace);
  if (opts.optional && opts.onlyUsed) throw usageError('--optional and --only-used contradict each other; give one');
  if (opts.chartVersion && charts.length === 0) throw usageError('--chart-version applies to --chart; give --chart too');
  if ((opts.to === undefined) !== (opts.valuesOut === undefined)) throw usageError('--to and --values-out go together: --to MIRROR --values-out DIR');
  if (opts.valuesOut && charts.length === 0) throw usageError('--values-out writes values for charts; give --chart too');
  const mapper = opts.to ? new TargetMapper({ to: opts.to, keepSourceRegistry: opts.keepSourceRegistry, maps: opts.map }) : undefined;
  let client: OciClient | undefined;
  const repositories = new HelmRepositories({ repoFlags: opts.repo ?? [], env: ctx.env, transport: ctx.transportOptions(), signal: ctx.signal });
  try {
    if (opts.dependencyUpdate || charts.some((c) => c.startsWith('oci://'))) client = ctx.client();
    const report = await imagesReport({
      charts,
      repositories,
      ...(opts.chartVersion ? { chartVersion: opts.chartVersion } : {}),
      ...(opts.dependencyUpdate ? { dependencyUpdate: true } : {}),
      ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
      ...(kubeVersion !== undefined ? { kubeVersion } : {}),
      rendered,
      valuesFiles: opts.values ?? [],
      set: opts.set ?? [],
      ...(client ? { client } : {}),
      ...(check ? { check } : {}),
      includeOptional: opts.optional === true,
      onlyUsed: opts.onlyUsed === true,
      ...(opts.skipImage?.length ? { skipImages: opts.skipImage } : {}),
      log: (line) => ctx.log(line),
    });
    ctx.log(report.summary);
    // an empty list prints nothing (not an empty line)
    if (report.text !== '' || ctx.opts.json) ctx.result(report.text, report.json);
    if (mapper && opts.valuesOut) {
      // the charts discovery read, not read (fetched, dependencies built) a second time
      await writeLoadedChartValues(ctx, opts.valuesOut, report.result.loaded, {
        mapper,
        valuesFiles: opts.values,
        set: opts.set,
        namespace: opts.namespace,
        kubeVersion,
      });
    }
    if (report.failure) throw report.failure;
  } finally {
    await client?.close();
    await repositories.close();
  }
}
