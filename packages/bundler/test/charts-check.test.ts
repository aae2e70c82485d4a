// `ferry images --check LIST`: the CI guard. A list missing a used image fails
// (exit 1) with a readable diff on stdout; a complete list passes (exit 0).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkImageList, formatImageListCheck, parseImageList } from '../src/charts/check.js';
import { imagesReport } from '../src/charts/report.js';

// Until @ferry/bundler re-exports ./charts, give the CLI command what it imports from it.
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'charts');
const SHAPES = join(FIXTURES, 'shapes');
const SHAPES_USED = [
  'docker.io/bitnami/nginx:1.25.3',
  'docker.io/envoyproxy/envoy:v1.29.1',
  'docker.io/org/cli:v9',
  'example.com/app:1.2',
  'ghcr.io/org/worker:3.4.5',
];

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-check-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('image lists', () => {
  it('parses one reference a line, normalized, with # comments and blank lines', () => {
    expect(parseImageList('# images\nnginx\n\n  bitnami/nginx:1.25.3   # web\nnginx:latest\n', 'images.txt')).toEqual([
      'docker.io/library/nginx:latest',
      'docker.io/bitnami/nginx:1.25.3',
    ]);
    expect(() => parseImageList('ok:1\nNot Valid\n', 'images.txt')).toThrow(/images\.txt line 2: invalid reference "Not Valid"/);
  });

  it('diffs: used missing fails, optional missing and extras are shown but pass', () => {
    const images = [
      { reference: 'a.io/x:1', usage: 'used' as const, charts: [], sources: [] },
      { reference: 'a.io/y:1', usage: 'optional' as const, charts: [], sources: [] },
    ];
    const bad = checkImageList(images, ['a.io/z:1']);
    expect(bad).toEqual({
      missing: [
        { reference: 'a.io/x:1', usage: 'used', required: true },
        { reference: 'a.io/y:1', usage: 'optional', required: false },
      ],
      extra: ['a.io/z:1'],
      ok: false,
    });
    expect(formatImageListCheck(bad, 'images.txt')).toBe(
      [
        'missing from images.txt (used by the chart):',
        '+ a.io/x:1',
        '',
        'not in images.txt, optional (only with non-default values, or not carried with --only-used):',
        '? a.io/y:1',
        '',
        'in images.txt but not referenced by the chart:',
        '- a.io/z:1',
        '',
        'images.txt: 1 used image missing',
      ].join('\n'),
    );
    const good = checkImageList(images, ['a.io/x:1', 'a.io/y:1']);
    expect(good).toEqual({ missing: [], extra: [], ok: true });
    expect(formatImageListCheck(good, 'images.txt')).toBe('images.txt: OK, every used image is listed');
  });

  it('a list must hold what pack carries: a missing runtime or declared image fails, unless only the used ones are asked for', () => {
    const images = [
      { reference: 'a.io/x:1', usage: 'used' as const, charts: [], sources: [] },
      { reference: 'a.io/op:1', usage: 'runtime' as const, charts: [], sources: [] },
      { reference: 'a.io/decl:1', usage: 'declared' as const, charts: [], sources: [] },
    ];
    const bad = checkImageList(images, ['a.io/x:1']);
    expect(bad.ok).toBe(false);
    expect(formatImageListCheck(bad, 'images.txt')).toBe(
      [
        'missing from images.txt (used by the chart):',
        '+ a.io/op:1  # runtime',
        '+ a.io/decl:1  # declared',
        '',
        'images.txt: 2 images the chart needs missing',
      ].join('\n'),
    );
    const usedOnly = checkImageList(images, ['a.io/x:1'], ['used']);
    expect(usedOnly.ok).toBe(true);
    expect(formatImageListCheck(usedOnly, 'images.txt')).toBe(
      [
        'not in images.txt, optional (only with non-default values, or not carried with --only-used):',
        '? a.io/op:1  # runtime',
        '? a.io/decl:1  # declared',
        '',
        'images.txt: OK, every used image is listed (2 optional not listed, 0 listed but not referenced)',
      ].join('\n'),
    );
  });

  it('imagesReport fails (exit code 1) on a list missing one used image and passes a complete one', async () => {
    const missingOne = SHAPES_USED.filter((r) => r !== 'ghcr.io/org/worker:3.4.5').join('\n');
    const bad = await imagesReport({ charts: [SHAPES], check: { name: 'images.txt', text: missingOne } });
    expect(bad.failure?.exitCode).toBe(1);
    expect(bad.failure?.message).toBe('images.txt is missing 1 image the chart uses (listed above with "+"); add it to the list.');
    expect(bad.text.split('\n').slice(0, 2)).toEqual(['missing from images.txt (used by the chart):', '+ ghcr.io/org/worker:3.4.5']);

    const good = await imagesReport({ charts: [SHAPES], check: { name: 'images.txt', text: SHAPES_USED.join('\n') } });
    expect(good.failure).toBeUndefined();
    expect(good.text).toBe(
      'not in images.txt, optional (only with non-default values, or not carried with --only-used):\n? docker.io/prom/exporter:v0.1\n\nimages.txt: OK, every used image is listed (1 optional not listed, 0 listed but not referenced)',
    );
  });
});

describe('ferry images (the command)', () => {
  let out = '';
  let err = '';
  beforeAll(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    });
  });
  afterEach(() => {
    out = '';
    err = '';
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });

  async function run(opts: Record<string, unknown>, globals: Record<string, unknown> = {}): Promise<{ code: number; out: string; err: string }> {
    const { imagesCommand } = await import('../../cli/src/commands/images.js');
    const { Context } = await import('../../cli/src/context.js');
    let code = 0;
    try {
      await imagesCommand(new Context(globals, {}), opts);
    } catch (e) {
      const fe = e as { exitCode?: number; message: string };
      if (fe.exitCode === undefined) throw e;
      code = fe.exitCode;
      err += `ferry: ${fe.message}\n`;
    }
    return { code, out, err };
  }

  it('prints the used images, sorted and normalized; --optional adds the rest', async () => {
    const r = await run({ chart: [SHAPES] });
    expect(r).toMatchObject({ code: 0, out: `${SHAPES_USED.join('\n')}\n` });
    expect(r.err).toContain('5 images used, 0 runtime, 0 declared, 1 optional (--optional lists them too)');
    out = '';
    const all = await run({ chart: [SHAPES], optional: true });
    expect(all.out).toBe(`${[...SHAPES_USED, 'docker.io/prom/exporter:v0.1  # optional'].sort().join('\n')}\n`);
  });

  it('--check exits 1 with a readable diff when the list lacks a used image, 0 when complete', async () => {
    const short = join(work, 'short.txt');
    await writeFile(short, `# images of shapes\n${SHAPES_USED.slice(1).join('\n')}\nexample.com/gone:1\n`);
    const bad = await run({ chart: [SHAPES], check: short });
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`missing from ${short} (used by the chart):\n+ docker.io/bitnami/nginx:1.25.3\n`);
    expect(bad.out).toContain(`in ${short} but not referenced by the chart:\n- example.com/gone:1\n`);
    expect(bad.err).toContain(`ferry: ${short} is missing 1 image the chart uses`);

    out = '';
    err = '';
    const full = join(work, 'full.txt');
    await writeFile(full, `${SHAPES_USED.join('\n')}\n`);
    const good = await run({ chart: [SHAPES], check: full });
    expect(good.code).toBe(0);
    expect(good.out).toContain(`${full}: OK, every used image is listed`);
  });

  it('--json prints one document with images, sources, charts and the check', async () => {
    const r = await run({ chart: [SHAPES], check: join(work, 'full.txt') }, { json: true });
    const doc = JSON.parse(r.out) as { images: Array<{ reference: string; usage: string; sources: unknown[] }>; check: { ok: boolean } };
    expect(doc.images.map((i) => i.reference)).toEqual([...SHAPES_USED, 'docker.io/prom/exporter:v0.1'].sort());
    expect(doc.check.ok).toBe(true);
    expect(doc.images.every((i) => i.sources.length > 0)).toBe(true);
  });

  it('reads rendered manifests from a file, and refuses to run with nothing to read', async () => {
    const r = await run({ file: join(FIXTURES, 'rendered', 'all-kinds.yaml') });
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toContain('example.com/builder:0.9');
    const none = await run({});
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/images needs a chart/);
  });
});
