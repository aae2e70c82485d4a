/**
 * What to pack, from every place a user can say it: references as arguments,
 * list files (`-f`, one reference a line, `#` comments) and a YAML spec
 * (`--spec`, zod-validated, errors name the bad field's path). References are
 * normalized and duplicates collapse to one, keeping the first position.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { formatReference, type Platform, parsePlatformList, parseReference, usageError } from '@ferry/oci-client';
import { z } from 'zod';
import type { ChartRequest } from './charts/pack-charts.js';

/** A chart in the spec: its path or oci:// reference, or that with values as `ferry images` takes them. */
const specChartSchema = z.union([
  z.string().min(1),
  z.strictObject({
    /** A chart directory, a .tgz file (relative to the spec file), oci://REGISTRY/REPO[:VERSION], REPO/CHART[@VERSION] or a chart URL. */
    chart: z.string().min(1),
    /** Values files, relative to the spec file, as helm --values. */
    values: z.array(z.string().min(1)).optional(),
    /** KEY=VALUE expressions, as helm --set. */
    set: z.array(z.string().min(1)).optional(),
    /** Pack the images only optional features of the chart use, too. */
    optionalImages: z.boolean().optional(),
    /** Pack only the images of the chart's pod specs (not runtime or declared ones). */
    onlyUsedImages: z.boolean().optional(),
    /** Globs on normalized references of the chart's images not to pack (`docker.io/bitnami/kubectl:*`). */
    skipImages: z.array(z.string().min(1)).optional(),
    /** Fetch dependencies the chart directory lists but does not vendor, as helm --dependency-update. */
    dependencyUpdate: z.boolean().optional(),
  }),
  z.strictObject({
    /** A classic Helm repository URL (what `helm repo add` takes). */
    repo: z.url({ protocol: /^https?$/ }),
    /** The chart's name in that repository. */
    name: z.string().min(1),
    /** An exact version or a semver constraint (`4.1.x`, `~4.1`, `>=4 <5`); default the newest release. */
    version: z.string().min(1).optional(),
    values: z.array(z.string().min(1)).optional(),
    set: z.array(z.string().min(1)).optional(),
    optionalImages: z.boolean().optional(),
    onlyUsedImages: z.boolean().optional(),
    skipImages: z.array(z.string().min(1)).optional(),
  }),
]);

/** A chart of a configured Helm repository: `REPO/CHART[@VERSION]` (as @ferry/helm's parseRepoChartName reads it). */
const REPO_CHART = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*(?:@.+)?$/;

export const packSpecSchema = z.strictObject({
  images: z.array(z.string().min(1)).optional(),
  /** Further list files, relative to the spec file. */
  lists: z.array(z.string().min(1)).optional(),
  platforms: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  output: z.string().min(1).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  /** Helm charts to carry, with the images they need. */
  charts: z.array(specChartSchema).optional(),
});

export type PackSpec = z.infer<typeof packSpecSchema>;

export interface PackInputs {
  /** Normalized references in first-seen order, without duplicates. */
  references: string[];
  /** Charts: from the spec first, then --chart. */
  charts: ChartRequest[];
  platforms: Platform[] | undefined;
  output: string | undefined;
  concurrency: number | undefined;
}

export interface RawPackInputs {
  images: string[];
  lists: string[];
  spec?: string | undefined;
  /** --chart: directories, .tgz files, oci:// references, REPO/CHART[@VERSION] or chart URLs. */
  charts?: string[] | undefined;
  /** --chart-version: the version or constraint of the --chart repository charts. */
  chartVersion?: string | undefined;
  /** --dependency-update: for every chart directory. */
  dependencyUpdate?: boolean | undefined;
  /** --values and --set: for the charts given with --chart. */
  values?: string[] | undefined;
  set?: string[] | undefined;
  /** --chart-optional-images: for every chart. */
  chartOptionalImages?: boolean | undefined;
  /** --only-used: for every chart, only the images of its pod specs. */
  onlyUsed?: boolean | undefined;
  /** --skip-image PATTERN: for every chart. */
  skipImages?: string[] | undefined;
  /** --namespace and --kube-version: what every chart is rendered for. */
  namespace?: string | undefined;
  kubeVersion?: string | undefined;
  platform?: string | undefined;
  output?: string | undefined;
  concurrency?: number | undefined;
}

/** Reads a list file: one reference a line, `#` starts a comment, blank lines ignored. */
export async function readListFile(path: string): Promise<string[]> {
  const text = await readText(path, 'list file');
  const refs: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const ref = line.replace(/#.*$/, '').trim();
    if (!ref) return;
    if (/\s/.test(ref)) throw usageError(`${path}:${i + 1}: one reference a line, found "${ref}"`);
    try {
      refs.push(formatReference(parseReference(ref)));
    } catch (e) {
      throw usageError(`${path}:${i + 1}: ${(e as Error).message}`);
    }
  });
  return refs;
}

/** Reads and validates a pack spec; errors name the path of the bad field. */
export async function readPackSpec(path: string): Promise<PackSpec> {
  const text = await readText(path, 'spec file');
  let doc: unknown;
  try {
    doc = (await import('yaml')).parse(text);
  } catch (e) {
    throw usageError(`${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = packSpecSchema.safeParse(doc ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.length
      ? issue.path
          .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
          .join('.')
          .replace(/\.\[/g, '[')
      : '(top level)';
    throw usageError(`${path}: ${where}: ${issue.message}`);
  }
  return r.data;
}

/** Merges arguments, list files and a spec into one normalized request. Flags win over the spec. */
export async function gatherPackInputs(raw: RawPackInputs): Promise<PackInputs> {
  const spec = raw.spec ? await readPackSpec(raw.spec) : undefined;
  const refs: string[] = [];
  const specDir = raw.spec ? raw.spec.replace(/[^/]*$/, '') : '';
  for (const [i, image] of (spec?.images ?? []).entries()) {
    try {
      refs.push(formatReference(parseReference(image)));
    } catch (e) {
      throw usageError(`${raw.spec}: images[${i}]: ${(e as Error).message}`);
    }
  }
  for (const list of spec?.lists ?? []) refs.push(...(await readListFile(list.startsWith('/') ? list : specDir + list)));
  for (const list of raw.lists) refs.push(...(await readListFile(list)));
  for (const image of raw.images) refs.push(formatReference(parseReference(image)));
  const references = [...new Set(refs)];
  const relative = (p: string) => (p.startsWith('/') || /^(?:oci|https?):\/\//.test(p) ? p : specDir + p);
  // REPO/CHART[@VERSION] names a repository chart unless a path of that name is beside the spec
  const chartOf = (c: string) => (REPO_CHART.test(c) && !existsSync(relative(c)) ? c : relative(c));
  const optional = raw.chartOptionalImages === true;
  const depUpdate = raw.dependencyUpdate === true;
  const onlyUsed = raw.onlyUsed === true;
  const skip = (own: string[] | undefined) => [...(own ?? []), ...(raw.skipImages ?? [])];
  const charts: ChartRequest[] = [];
  for (const c of spec?.charts ?? []) {
    if (typeof c === 'string')
      charts.push({ chart: chartOf(c), optionalImages: optional, onlyUsedImages: onlyUsed, skipImages: skip(undefined), dependencyUpdate: depUpdate });
    else if ('repo' in c) {
      charts.push({
        chart: c.name,
        repo: c.repo,
        version: c.version,
        valuesFiles: (c.values ?? []).map(relative),
        set: c.set ?? [],
        optionalImages: optional || c.optionalImages === true,
        onlyUsedImages: onlyUsed || c.onlyUsedImages === true,
        skipImages: skip(c.skipImages),
      });
    } else {
      charts.push({
        chart: relative(c.chart),
        valuesFiles: (c.values ?? []).map(relative),
        set: c.set ?? [],
        optionalImages: optional || c.optionalImages === true,
        onlyUsedImages: onlyUsed || c.onlyUsedImages === true,
        skipImages: skip(c.skipImages),
        dependencyUpdate: depUpdate || c.dependencyUpdate === true,
      });
    }
  }
  if ((raw.values?.length || raw.set?.length) && !raw.charts?.length) throw usageError('--values and --set apply to charts; give --chart too');
  if (raw.chartVersion && !raw.charts?.length) throw usageError('--chart-version applies to --chart; give --chart too');
  if ((raw.onlyUsed || raw.skipImages?.length) && !raw.charts?.length && !spec?.charts?.length) {
    throw usageError(`${raw.onlyUsed ? '--only-used' : '--skip-image'} applies to the images of charts; give --chart too`);
  }
  for (const c of raw.charts ?? []) {
    charts.push({
      chart: c,
      version: raw.chartVersion,
      valuesFiles: raw.values ?? [],
      set: raw.set ?? [],
      optionalImages: optional,
      onlyUsedImages: onlyUsed,
      skipImages: skip(undefined),
      dependencyUpdate: depUpdate,
    });
  }
  if (references.length === 0 && charts.length === 0) throw usageError('nothing to pack: give image references, -f LIST, --chart CHART or --spec FILE');
  for (const c of charts) {
    if (raw.namespace !== undefined) c.namespace = raw.namespace;
    if (raw.kubeVersion !== undefined) c.kubeVersion = raw.kubeVersion;
  }
  const platformText = raw.platform ?? (Array.isArray(spec?.platforms) ? spec.platforms.join(',') : spec?.platforms);
  return {
    references,
    charts,
    platforms: platformText ? parsePlatformList(platformText) : undefined,
    output: raw.output ?? spec?.output,
    concurrency: raw.concurrency ?? spec?.concurrency,
  };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw usageError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}
