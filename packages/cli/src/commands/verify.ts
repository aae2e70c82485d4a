/** `ferry verify BUNDLE [--key PUB]`: structure, every blob re-hashed, signature. */
import { loadPublicKey, openBundle, verifyBundle, type VerifyReport } from '@ferry/bundler';
import { FerryError } from '@ferry/oci-client';
import type { Context } from '../context.js';
import { formatBytes, shortDigest } from '../format.js';

export interface VerifyCommandOptions {
  key?: string;
}

export async function verifyCommand(ctx: Context, bundlePath: string, opts: VerifyCommandOptions): Promise<void> {
  const publicKey = opts.key ? await loadPublicKey(opts.key) : undefined;
  const bundle = await openBundle(bundlePath);
  let report: VerifyReport;
  try {
    report = await verifyBundle(bundle, { publicKey });
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
