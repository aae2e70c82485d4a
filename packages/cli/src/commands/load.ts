/**
 * `ferry load BUNDLE --to REGISTRY[/PREFIX] [--map SRC=DST]... [--keep-source-registry]
 *  [--harbor-create-projects] [-j N] [--dry-run] [--mapping-out FILE] [--mirror-config DIR] [--values-out DIR]`
 */
import { load, loadPublicKey, mappingFormat, openBundle, TargetMapper, writeMapping } from '@ferry/bundler';
import type { Context } from '../context.js';
import { formatBytes, shortDigest } from '../format.js';
import { Progress } from '../progress.js';
import { writeMirrors } from './mirrors.js';
import { writeBundleValues } from './values.js';

export interface LoadCommandOptions {
  to: string;
  map?: string[];
  keepSourceRegistry?: boolean;
  harborCreateProjects?: boolean;
  jobs?: number;
  dryRun?: boolean;
  mappingOut?: string;
  mirrorConfig?: string;
  valuesOut?: string;
  key?: string;
  /** The repository of images an OCI layout names by a tag alone. */
  name?: string;
}

export async function loadCommand(ctx: Context, bundlePath: string, opts: LoadCommandOptions): Promise<void> {
  const mapper = new TargetMapper({ to: opts.to, keepSourceRegistry: opts.keepSourceRegistry, maps: opts.map });
  if (opts.mappingOut) mappingFormat(opts.mappingOut);
  const publicKey = opts.key ? await loadPublicKey(opts.key) : undefined;
  const bundle = await openBundle(bundlePath, { repository: opts.name });
  const client = ctx.client();
  const progress = new Progress(!ctx.opts.quiet && !ctx.opts.json && !opts.dryRun);
  const started = Date.now();
  try {
    bundle.requireRepositories();
    const result = await load({
      client,
      bundle,
      mapper,
      concurrency: opts.jobs,
      publicKey,
      signal: ctx.signal,
      dryRun: opts.dryRun,
      harborCreateProjects: opts.harborCreateProjects,
      onPlanned: (p) => progress.expect(p.images, p.bytes),
      onEvent: progress.onEvent,
      log: (line) => ctx.log(line),
    });
    progress.stop();
    if (opts.mappingOut && !opts.dryRun) {
      await writeMapping(
        opts.mappingOut,
        result.images.map((i) => ({ source: i.source, target: i.target, digest: i.digest })),
        result.charts.map((c) => ({ name: c.name, version: c.version, source: c.source, target: c.target, digest: c.digest })),
      );
    }
    const mirrorConfig =
      opts.mirrorConfig && !opts.dryRun
        ? await writeMirrors(
            ctx,
            opts.mirrorConfig,
            result.images.map((i) => i.source),
            mapper,
            client,
          )
        : undefined;
    const valuesFiles = opts.valuesOut && !opts.dryRun ? await writeBundleValues(ctx, opts.valuesOut, bundle, mapper) : undefined;
    const seconds = (Date.now() - started) / 1000;
    const s = result.stats;
    const lines = result.images.map((i) =>
      opts.dryRun
        ? `${i.source} -> ${i.target} (${shortDigest(i.digest)}): ${i.blobsToPush} blobs to push, ${i.blobsPresent} present`
        : // The digest the target holds, once (a digest-pinned target names one already).
          `${i.source} -> ${i.target.split('@')[0]}@${i.digest}`,
    );
    for (const c of result.charts) {
      lines.push(
        opts.dryRun
          ? `chart ${c.name} ${c.version} -> ${c.target} (${shortDigest(c.digest)}): ${c.blobsToPush} blobs to push, ${c.blobsPresent} present`
          : `chart ${c.name} ${c.version} -> ${c.target}@${c.digest}`,
      );
    }
    if (!opts.dryRun) {
      const charts = result.charts.length ? `, ${result.charts.length} chart${result.charts.length === 1 ? '' : 's'}` : '';
      lines.push(
        `${result.images.length} image${result.images.length === 1 ? '' : 's'}${charts} loaded; blobs ${s.uploaded} uploaded, ${s.mounted} mounted, ${s.skipped} already there; ${formatBytes(s.bytes)} in ${seconds.toFixed(1)}s`,
      );
    }
    ctx.result(lines.join('\n'), {
      bundle: bundlePath,
      to: opts.to,
      dryRun: opts.dryRun === true,
      images: result.images,
      charts: result.charts,
      blobs: { uploaded: s.uploaded, mounted: s.mounted, skipped: s.skipped },
      bytes: s.bytes,
      projectsCreated: result.projectsCreated,
      ...(mirrorConfig ? { mirrorConfig } : {}),
      ...(valuesFiles ? { valuesFiles } : {}),
      seconds,
    });
  } finally {
    progress.stop();
    await bundle.close();
    await client.close();
  }
}
