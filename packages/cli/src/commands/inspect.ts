/** `ferry inspect BUNDLE`: the images and Helm charts a bundle holds, its totals, id, delta and signature status. */
import { type InspectImage, type InspectReport, inspectBundle, openBundle } from '@ferry/bundler';
import type { Context } from '../context.js';
import { formatBytes, shortDigest } from '../format.js';

/** Platforms shown in the table before "+N"; --json has them all. */
const MAX_PLATFORMS_SHOWN = 4;

export async function inspectCommand(ctx: Context, bundlePath: string, opts: { name?: string } = {}): Promise<void> {
  const reader = await openBundle(bundlePath, { repository: opts.name });
  try {
    const report = await inspectBundle(reader);
    ctx.result(renderInspect(report), report);
  } finally {
    await reader.close();
  }
}

/** The human-readable report: a table of images, then totals and status lines. */
export function renderInspect(r: InspectReport): string {
  const header = ['REFERENCE', 'DIGEST', 'PLATFORMS', 'SIZE'];
  const rows = r.images.map((i) => [i.reference, shortDigest(i.digest), platformsCell(i), sizeCell(i, r.delta !== null)]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join('   ');
  // A bundle of charts alone has no image table.
  const out = rows.length > 0 || r.charts.length === 0 ? [line(header), ...rows.map(line), ''] : [];
  // Per image, what travels with it: signatures, SBOMs, attestations.
  const signed = r.images.filter((i) => i.referrers.length > 0);
  for (const i of signed) {
    out.push(`${i.reference}:`);
    for (const a of i.referrers) {
      out.push(`  ${a.kind.padEnd(11)}  ${shortDigest(a.digest)}  ${a.artifactType ?? '-'}${a.tag ? `  (tag ${a.tag})` : ''}  of ${shortDigest(a.subject)}`);
    }
  }
  if (signed.length > 0) out.push('');
  if (r.charts.length > 0) {
    const chartHeader = ['CHART', 'VERSION', 'DIGEST', 'IMAGES', 'SIZE', 'SOURCE'];
    const chartRows = r.charts.map((c) => [
      c.reference,
      c.version,
      shortDigest(c.digest),
      c.images ? `${c.images.packed} packed (${c.images.used} used, ${c.images.optional} optional)` : '-',
      formatBytes(c.size) +
        (c.missing.blobs > 0 ? ` (+${formatBytes(c.missing.bytes)} ${r.delta !== null ? 'in base' : 'MISSING'})` : '') +
        (c.complete ? '' : ' incomplete'),
      c.source ?? '-',
    ]);
    const w = chartHeader.map((h, c) => Math.max(h.length, ...chartRows.map((row) => row[c]!.length)));
    const chartLine = (cells: string[]) => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(w[c]!))).join('   ');
    out.push(chartLine(chartHeader), ...chartRows.map(chartLine), '');
  }

  const t = r.totals;
  out.push(
    `${t.images} image${t.images === 1 ? '' : 's'}${r.charts.length ? ` and ${r.charts.length} chart${r.charts.length === 1 ? '' : 's'}` : ''}: unique ${formatBytes(t.bytes)} in ${t.blobs} blob${t.blobs === 1 ? '' : 's'}, ` +
      `logical ${formatBytes(t.logicalBytes)}: de-duplication saved ${formatBytes(t.saved)}`,
  );
  if (t.missing.blobs > 0) {
    out.push(
      r.delta !== null
        ? `relies on ${t.missing.blobs} blob${t.missing.blobs === 1 ? '' : 's'} (${formatBytes(t.missing.bytes)}) from its base bundle`
        : `MISSING ${t.missing.blobs} blob${t.missing.blobs === 1 ? '' : 's'} (${formatBytes(t.missing.bytes)}) that its images reference`,
    );
  }
  if (t.unreferenced.blobs > 0) {
    out.push(
      `${t.unreferenced.blobs} blob${t.unreferenced.blobs === 1 ? '' : 's'} (${formatBytes(t.unreferenced.bytes)}) not referenced by any image${r.charts.length ? ' or chart' : ''}`,
    );
  }
  if (r.kind === 'ferry') {
    out.push(`bundle id ${r.bundleId}`);
    if (r.created) out.push(`created ${r.created} by ${r.tool}`);
    out.push(r.delta !== null ? `delta of ${r.delta}` : 'full bundle');
    out.push(r.signed ? 'signed' : 'unsigned');
  } else {
    out.push(
      r.kind === 'oci-archive'
        ? 'OCI archive (no ferry.json)'
        : r.kind === 'docker-archive'
          ? 'docker archive (manifests built from its manifest.json)'
          : 'OCI layout directory (no ferry.json)',
    );
  }
  return out.join('\n');
}

function platformsCell(i: InspectImage): string {
  if (i.platforms.length === 0) return '-';
  const shown = i.platforms.slice(0, MAX_PLATFORMS_SHOWN).join(',');
  const more = i.platforms.length - MAX_PLATFORMS_SHOWN;
  return more > 0 ? `${shown} +${more}` : shown;
}

function sizeCell(i: InspectImage, delta: boolean): string {
  let s = formatBytes(i.size);
  if (i.missing.blobs > 0) s += ` (+${formatBytes(i.missing.bytes)} ${delta ? 'in base' : 'MISSING'})`;
  if (!i.complete) s += ' incomplete';
  return s;
}
