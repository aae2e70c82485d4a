/**
 * `ferry serve BUNDLE... [--listen HOST:PORT] [--prefix P] [--tls-cert F --tls-key F]
 *  [--htpasswd F] [--verify] [--insecure-listen] [-j N]`: the bundles as a
 * read-only registry until SIGINT/SIGTERM, which closes it and exits 0.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { type BundleReader, BundleServer, buildContent, Htpasswd, openBundle } from '@ferry/bundler';
import { FerryError, usageError } from '@ferry/oci-client';
import type { Context } from '../context.js';

export interface ServeCommandOptions {
  listen: string;
  prefix?: string;
  tlsCert?: string;
  tlsKey?: string;
  htpasswd?: string;
  verify?: boolean;
  insecureListen?: boolean;
  jobs?: number;
}

export async function serveCommand(ctx: Context, bundlePaths: string[], opts: ServeCommandOptions): Promise<void> {
  const { host, port } = parseListen(opts.listen);
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw usageError('--tls-cert and --tls-key go together');
  if (!isLoopback(host) && opts.tlsCert === undefined && !opts.insecureListen) {
    throw usageError(`--listen ${opts.listen} is not a loopback address: give --tls-cert and --tls-key, or --insecure-listen to serve plain HTTP there`);
  }
  const tls = opts.tlsCert && opts.tlsKey ? { cert: await readPem(opts.tlsCert, '--tls-cert'), key: await readPem(opts.tlsKey, '--tls-key') } : undefined;
  const htpasswd = opts.htpasswd ? await Htpasswd.load(opts.htpasswd) : undefined;
  const signal = ctx.signal;

  const bundles: BundleReader[] = [];
  try {
    for (const path of bundlePaths) bundles.push(await openBundle(path));
    const content = await buildContent(bundles, { prefix: opts.prefix });
    const access = (line: string): void => {
      if (!ctx.opts.quiet) process.stderr.write(`${line}\n`);
    };
    const server = new BundleServer({
      content,
      jobs: opts.jobs,
      htpasswd,
      tls,
      log: (line) => process.stderr.write(`${line}\n`),
      onAccess: (e) => access(ctx.opts.json ? JSON.stringify(e) : `${e.method} ${e.path} ${e.status} ${e.bytes} ${e.ms}ms`),
    });
    if (opts.verify) {
      const damaged = await server.verifyAll();
      if (damaged.length) throw new FerryError('integrity', `${damaged.length} blob${damaged.length === 1 ? '' : 's'} failed the check: ${damaged[0]}`);
    }
    if (signal.aborted) return;
    const address = await server.listen(host, port).catch((e: NodeJS.ErrnoException) => {
      throw usageError(`cannot listen on ${opts.listen}: ${e.code === 'EADDRINUSE' ? 'the address is in use' : e.message}`);
    });
    const shown = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
    const what = `${content.images} image${content.images === 1 ? '' : 's'}${content.charts ? `, ${content.charts} chart${content.charts === 1 ? '' : 's'}` : ''} in ${content.repos.size} repositor${content.repos.size === 1 ? 'y' : 'ies'} from ${bundles.length} bundle${bundles.length === 1 ? '' : 's'}`;
    process.stderr.write(`ferry serve: listening on ${tls ? 'https' : 'http'}://${shown}, serving ${what}${opts.verify ? ' (every blob verified)' : ''}\n`);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await server.close();
    ctx.log('ferry serve: stopped');
  } finally {
    for (const b of bundles) await b.close();
  }
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw usageError(`invalid --listen "${text}": write HOST:PORT, e.g. 127.0.0.1:5000 or [::1]:5000`);
  return { host: m[1] ?? m[2]!, port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

async function readPem(file: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw usageError(`cannot read ${flag} ${file}: ${(e as Error).message}`);
  }
}
