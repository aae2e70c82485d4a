/** `ferry verify BUNDLE [--key PUB]`: structure, every blob re-hashed, signature. */
import {
  type AgainstReport,
  type AgainstRow,
  checkSignature,
  loadPublicKey,
  openBundle,
  TargetMapper,
  type VerifyReport,
  verifyAgainst,
  verifyBundle,
} from '@ferry/bundler';
import { FerryError } from '@ferry/oci-client';
import type { Context } from '../context.js';
import { formatBytes, shortDigest } from '../format.js';

export interface VerifyCommandOptions {
  key?: string;
  against?: string;
  map?: string[];
  keepSourceRegistry?: boolean;
  allowFiltered?: boolean;
  jobs?: number;
  /** The repository of images named by a tag alone. */
  name?: string;
}

export async function verifyCommand(ctx: Context, bundlePath: string, opts: VerifyCommandOptions): Promise<void> {
  const publicKey = opts.key ? await loadPublicKey(opts.key) : undefined;
  if (opts.against) return againstCommand(ctx, bundlePath, opts, publicKey);
  const bundle = await openBundle(bundlePath, { repository: opts.name });
  let report: VerifyReport;
  try {
    report = await verifyBundle(bundle, { publicKey, concurrency: opts.jobs });
  } finally {
    await bundle.close();
  }
  ctx.result(render(report), report);
  if (!report.ok) {
    const first = report.badBlobs[0];
    throw new FerryError(
      'integrity',
      first
        ? `${bundlePath} failed verification: blob ${first.digest} ${first.problem}${first.images.length ? ` (breaks ${first.images.join(', ')})` : ''}${report.badBlobs.length > 1 ? `, and ${report.badBlobs.length - 1} more bad blobs` : ''}`
        : `${bundlePath} failed verification: ${report.problems[0]}`,
    );
  }
}

function render(r: VerifyReport): string {
  const lines: string[] = [];
  for (const img of r.images) lines.push(`${img.ok ? 'ok    ' : 'BROKEN'}  ${img.ref}  ${shortDigest(img.digest)}`);
  for (const c of r.charts) lines.push(`${c.ok ? 'ok    ' : 'BROKEN'}  chart ${c.ref}  ${shortDigest(c.digest)}`);
  lines.push('');
  lines.push(`${r.blobsChecked} blobs re-hashed (${formatBytes(r.bytesChecked)}) in ${r.seconds.toFixed(1)}s`);
  for (const b of r.badBlobs) lines.push(`bad blob ${b.digest}: ${b.problem}${b.images.length ? `; breaks ${b.images.join(', ')}` : ''}`);
  for (const p of r.problems) lines.push(`problem: ${p}`);
  if (r.bundleId) lines.push(`bundle id ${r.bundleId}`);
  if (r.delta) lines.push(`delta of ${r.delta}`);
  lines.push(`signature: ${r.signature}`);
  lines.push(r.ok ? 'bundle OK' : 'bundle FAILED verification');
  return lines.join('\n');
}

/** The registry check alone: the bundle's blobs are not re-hashed (run plain `verify` for that). */
async function againstCommand(
  ctx: Context,
  bundlePath: string,
  opts: VerifyCommandOptions,
  publicKey: Awaited<ReturnType<typeof loadPublicKey>> | undefined,
): Promise<void> {
  const mapper = new TargetMapper({ to: opts.against!, keepSourceRegistry: opts.keepSourceRegistry, maps: opts.map });
  const bundle = await openBundle(bundlePath, { repository: opts.name });
  const client = ctx.client();
  let report: AgainstReport;
  try {
    bundle.requireRepositories();
    if (publicKey) checkSignature(bundle.name, bundle.bundleId, bundle.signature, publicKey);
    report = await verifyAgainst(bundle, client, mapper, { jobs: opts.jobs, allowFiltered: opts.allowFiltered });
  } finally {
    await bundle.close();
    await client.close();
  }
  const lines = report.rows.map((r) => {
    const what =
      r.status === 'filtered'
        ? filteredText(r)
        : r.status === 'ok'
          ? `${shortDigest(r.expected)}${r.filtered ? ` (${filteredText(r)}; allowed)` : ''}`
          : r.status === 'missing'
            ? 'not in the registry'
            : r.status === 'different'
              ? `holds ${shortDigest(r.actual!)}, bundle has ${shortDigest(r.expected)}`
              : `lacks ${lacking(r)}`;
    return `${r.status.padEnd(10)}  ${r.target}  ${what}`;
  });
  const bad = report.rows.filter((r) => r.status !== 'ok');
  const what = report.rows.some((r) => r.kind === 'chart') ? 'images and charts' : 'images';
  lines.push(
    bad.length ? `${bad.length} of ${report.rows.length} ${what} not as in the bundle` : `all ${report.rows.length} ${what} present with the bundle's digests`,
  );
  ctx.result(lines.join('\n'), report);
  if (bad.length) {
    const why = (r: AgainstRow): string =>
      r.status === 'incomplete'
        ? `${r.target} lacks ${lacking(r, (d) => d)}`
        : r.status === 'filtered'
          ? `${filteredText(r)} (packed with --platform; --allow-filtered accepts it)`
          : `${r.target} ${r.status}`;
    throw new FerryError('integrity', `${opts.against} does not hold what ${bundlePath} holds: ${bad.map(why).join(', ')}`);
  }
}

/** A pinned digest that exists at the target only as its filtered index. */
function filteredText(r: AgainstRow): string {
  return `filtered: ${r.filtered!.reference} is not at the target, ${r.filtered!.held} is`;
}

/** What an incomplete image lacks: "1 platform manifest: …; 2 blobs: …, …". */
function lacking(r: AgainstRow, digest: (d: string) => string = shortDigest): string {
  const parts: string[] = [];
  if (r.missingChildren.length) parts.push(`${r.missingChildren.length} platform manifest(s): ${r.missingChildren.map(digest).join(', ')}`);
  if (r.missingBlobs.length) parts.push(`${r.missingBlobs.length} blob(s): ${r.missingBlobs.map(digest).join(', ')}`);
  return parts.join('; ');
}
