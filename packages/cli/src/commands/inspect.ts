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
  // Per image, what travels with it: signatures, SBOMs, attestations, and how they were looked for.
  const signed = r.images.filter((i) => i.referrers.length > 0);
  for (const i of signed) {
    out.push(`${i.reference}:${i.referrerSearch ? ` (looked for ${searchText(i.referrerSearch)})` : ''}`);
    for (const a of i.referrers) {
      out.push(`  ${a.kind.padEnd(11)}  ${shortDigest(a.digest)}  ${a.artifactType ?? '-'}${a.tag ? `  (tag ${a.tag})` : ''}  of ${shortDigest(a.subject)}`);
    }
  }
  // The others in one line per way they were looked for (or not).
  const unsigned = new Map<string, number>();
  for (const i of r.images.filter((i) => i.referrers.length === 0)) {
    const s = i.referrerSearch;
    const text =
      s === null
        ? r.kind === 'ferry'
          ? 'referrers not recorded (a bundle of an earlier ferry)'
          : undefined
        : s.mode === 'none'
          ? 'referrers not looked for (--referrers none)'
          : `no referrers found (looked for ${searchText(s)})`;
    if (text) unsigned.set(text, (unsigned.get(text) ?? 0) + 1);
  }
  for (const [text, n] of unsigned) out.push(`${text}: ${n} image${n === 1 ? '' : 's'}`);
  if (signed.length > 0 || unsigned.size > 0) out.push('');
  if (r.charts.length > 0) {
    const chartHeader = ['CHART', 'VERSION', 'DIGEST', 'IMAGES', 'SIZE', 'SOURCE'];
    const chartRows = r.charts.map((c) => [
      c.reference,
      c.version,
      shortDigest(c.digest),
      c.images ? `${c.images.packed} packed (${chartClasses(c.images)})` : '-',
      formatBytes(c.size) +
        (c.missing.blobs > 0 ? ` (+${formatBytes(c.missing.bytes)} ${r.delta !== null ? 'in base' : 'MISSING'})` : '') +
        (c.complete ? '' : ' incomplete'),
      c.source ?? '-',
    ]);
    const w = chartHeader.map((h, c) => Math.max(h.length, ...chartRows.map((row) => row[c]!.length)));
    const chartLine = (cells: string[]) => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(w[c]!))).join('   ');
    out.push(chartLine(chartHeader), ...chartRows.map(chartLine), '');
    // each chart's images with their class: what an air-gapped install of it will pull
    for (const c of r.charts) {
      if (!c.images?.list.length) continue;
      out.push(`${c.reference} images:`);
      const width = Math.max(...c.images.list.map((i) => i.ref.length));
      for (const i of c.images.list) {
        const what =
          i.skippedBy !== undefined
            ? `skipped by --skip-image ${i.skippedBy}`
            : `${i.usage}${i.testHook ? ' (test hook)' : ''}, ${i.packed ? 'packed' : 'not packed'}`;
        out.push(`  ${i.ref.padEnd(width)}  ${what}`);
      }
      out.push('');
    }
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

/** "all, 3 manifests, by the fallback tag and cosign's .sig .att .sbom tags" */
function searchText(s: NonNullable<InspectImage['referrerSearch']>): string {
  const how = [
    ...s.listing.map((l) => (l === 'referrers-api' ? 'the referrers API' : 'the fallback tag')),
    ...(s.cosignTags.length ? [`cosign's ${s.cosignTags.join(' ')} tags`] : []),
  ];
  const manifests = `${s.subjects} manifest${s.subjects === 1 ? '' : 's'}`;
  return `${s.mode}${s.types ? ` of type ${s.types.join(', ')}` : ''}, ${manifests}${how.length ? `, by ${how.join(' and ')}` : ''}`;
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

/** `2 used, 1 runtime, 1 optional`: used always, the other classes when the chart has any. */
function chartClasses(images: { used: number; runtime: number; declared: number; optional: number }): string {
  const parts = [`${images.used} used`];
  for (const k of ['runtime', 'declared', 'optional'] as const) if (images[k] > 0 || k === 'optional') parts.push(`${images[k]} ${k}`);
  return parts.join(', ');
}
