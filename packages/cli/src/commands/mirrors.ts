/**
 * `ferry mirrors BUNDLE --to REGISTRY[/PREFIX] -o DIR [--map SRC=DST]... [--keep-source-registry]`:
 * the runtime mirror configs (containerd hosts.toml, k3s registries.yaml,
 * containers registries.conf) for a bundle loaded (or to be loaded) with that
 * mapping, written without touching any registry. `load --mirror-config DIR`
 * writes the same files after a load.
 */
import { resolve } from 'node:path';
import { mirrorAccess, mirrorImages, openBundle, TargetMapper, writeMirrorConfigs } from '@ferry/bundler';
import type { OciClient } from '@ferry/oci-client';
import type { Context } from '../context.js';

export interface MirrorsCommandOptions {
  to: string;
  output: string;
  map?: string[];
  keepSourceRegistry?: boolean;
}

/** Writes the configs for `sources` under `dir`; says on stderr what a format cannot cover. */
export async function writeMirrors(ctx: Context, dir: string, sources: string[], mapper: TargetMapper, client?: OciClient) {
  const images = mirrorImages(sources, mapper);
  const insecure = new Set((ctx.opts.insecureRegistry ?? []).map((h) => h.toLowerCase()));
  const access = await mirrorAccess(
    images.map((i) => i.target.registry),
    {
      caFile: ctx.opts.caFile ? resolve(ctx.opts.caFile) : undefined,
      insecure: (h) => insecure.has(h.toLowerCase()),
      scheme: client ? async (h) => ((await client.transport.baseUrl(h, ctx.signal)).startsWith('http:') ? 'http' : 'https') : undefined,
    },
  );
  const out = await writeMirrorConfigs(dir, images, access);
  for (const line of out.uncovered) ctx.log(`mirror config: not covered: ${line}`);
  return { dir, files: out.files.map((f) => f.path), uncovered: out.uncovered };
}

export async function mirrorsCommand(ctx: Context, bundlePath: string, opts: MirrorsCommandOptions): Promise<void> {
  const mapper = new TargetMapper({ to: opts.to, keepSourceRegistry: opts.keepSourceRegistry, maps: opts.map });
  const bundle = await openBundle(bundlePath);
  try {
    const written = await writeMirrors(
      ctx,
      opts.output,
      bundle
        .images()
        .filter((i) => i.named)
        .map((i) => i.ref),
      mapper,
    );
    ctx.result(written.files.map((f) => `${opts.output}/${f}`).join('\n'), written);
  } finally {
    await bundle.close();
  }
}
