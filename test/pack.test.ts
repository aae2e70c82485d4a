// `ferry pack` against a real registry:2, with skopeo as the independent reader.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFetch, type SeededImage, seedImage, skopeoInspectRaw, startRegistry, type TestRegistry } from './harness/index.js';
import { run } from './harness/process.js';
import { FERRY_MAIN, type FerryHome, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let reg: TestRegistry;
let fresh: TestRegistry;
let dir: string;
let app: SeededImage;
let tools: SeededImage;
let single: SeededImage;
let home: FerryHome;

const runFerry = (args: string[], opts: { env?: Record<string, string> } = {}) => runFerryIn(args, { home, ...opts });
const text = async (file: string, args: string[]) => (await run(file, args)).toString('utf8');

const sha256File = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

beforeAll(async () => {
  [reg, fresh] = await Promise.all([startRegistry(), startRegistry()]);
  dir = await mkdtemp(join(tmpdir(), 'ferry-pack-test-'));
  home = await makeFerryHome();
  // app and tools share their base layer and their amd64 layer 1.
  app = await seedImage(reg, 'team/app:1.0', { seed: 's', sharedBaseLayer: true, layers: 2 });
  tools = await seedImage(reg, 'team/tools:2.0', { seed: 's', sharedBaseLayer: true, layers: 3 });
  single = await seedImage(reg, 'team/single:1', { seed: 'one', single: true, layers: 1 });
});

afterAll(async () => {
  await Promise.all([reg?.stop(), fresh?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
  await home?.remove();
});

/** Tar member names in order, as GNU tar lists them. */
async function tarList(file: string): Promise<string[]> {
  return (await text('tar', ['-tf', file])).split('\n').filter(Boolean);
}

describe('ferry pack', () => {
  it('writes an OCI layout tar that skopeo reads byte for byte and copies with the same digests', async () => {
    const out = join(dir, 'bundle.tar');
    const refs = [`${reg.host}/team/app:1.0`, `${reg.host}/team/tools:2.0`, `${reg.host}/team/single:1`];
    const r = await runFerry(['pack', ...refs, '-o', out, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.images.map((i: { ref: string }) => i.ref)).toEqual(refs);
    expect(summary.images[0].digest).toBe(app.digest);
    expect(summary.images[0].platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);

    for (const [ref, image] of [
      [refs[0]!, app],
      [refs[1]!, tools],
      [refs[2]!, single],
    ] as const) {
      const raw = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}:${ref}`]);
      expect(sha256(raw)).toBe(image.digest);
    }
    // Into a fresh registry with skopeo: same digests.
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      '--all',
      '--preserve-digests',
      `oci-archive:${out}:${refs[0]}`,
      `docker://${fresh.host}/copied/app:1.0`,
      '--dest-tls-verify=false',
    ]);
    const copied = await skopeoInspectRaw(fresh, 'copied/app:1.0');
    expect(sha256(copied)).toBe(app.digest);
    for (const m of app.manifests) {
      expect(sha256(await skopeoInspectRaw(fresh, `copied/app@${m.digest}`))).toBe(m.digest);
    }
  });

  it('stores every shared blob once, in the documented entry order, and ferry.json agrees', async () => {
    const out = join(dir, 'dedup.tar');
    const r = await runFerry(['pack', `${reg.host}/team/app:1.0`, `${reg.host}/team/tools:2.0`, '-o', out, '-q']);
    expect(r.code).toBe(0);
    const names = await tarList(out);
    // manifest.json (docker load, podman load) follows the metadata ferry reads.
    expect(names.slice(0, 6)).toEqual(['oci-layout', 'index.json', 'ferry.json', 'manifest.json', 'blobs/', 'blobs/sha256/']);
    const blobNames = names.slice(6);
    expect(new Set(blobNames).size).toBe(blobNames.length);
    const unique = new Set<string>([app.digest, tools.digest]);
    for (const img of [app, tools]) {
      for (const m of img.manifests) unique.add(m.digest);
      for (const d of img.blobs.keys()) unique.add(d);
    }
    expect(blobNames.sort()).toEqual([...unique].map((d) => `blobs/sha256/${d.slice(7)}`).sort());

    const ferry = JSON.parse(await text('tar', ['-xOf', out, 'ferry.json']));
    expect(ferry.totals.blobs).toBe(unique.size);
    expect(ferry.totals.logicalBytes).toBeGreaterThan(ferry.totals.bytes);
    // inspect reports what de-duplication saved.
    const inspected = JSON.parse((await runFerry(['inspect', out, '--json'])).stdout);
    expect(inspected.totals).toMatchObject({ blobs: unique.size, bytes: ferry.totals.bytes, logicalBytes: ferry.totals.logicalBytes });
    expect(inspected.totals.saved).toBe(ferry.totals.logicalBytes - ferry.totals.bytes);
    expect(inspected.totals.saved).toBeGreaterThan(0);
    const index = JSON.parse(await text('tar', ['-xOf', out, 'index.json']));
    expect(index.manifests[1].annotations).toEqual({
      'io.containerd.image.name': `${reg.host}/team/tools:2.0`,
      'org.opencontainers.image.ref.name': `${reg.host}/team/tools:2.0`,
    });
    // Every blob's bytes hash to its name.
    const x = join(dir, 'x');
    await run('mkdir', ['-p', x]);
    await run('tar', ['-xf', out, '-C', x]);
    for (const hex of await readdir(join(x, 'blobs/sha256'))) {
      expect(await sha256File(join(x, 'blobs/sha256', hex))).toBe(hex);
    }
  });

  it('is deterministic: the same inputs give a byte-identical file', async () => {
    const a = join(dir, 'det-a.tar');
    const b = join(dir, 'det-b.tar');
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    expect((await runFerry(['pack', `${reg.host}/team/tools:2.0`, `${reg.host}/team/app:1.0`, '-o', a, '-q'], { env })).code).toBe(0);
    expect((await runFerry(['pack', `${reg.host}/team/tools:2.0`, `${reg.host}/team/app:1.0`, '-o', b, '-q', '-j', '1'], { env })).code).toBe(0);
    expect(await sha256File(a)).toBe(await sha256File(b));
    const ferry = JSON.parse(await text('tar', ['-xOf', a, 'ferry.json']));
    expect(ferry.created).toBe('2023-11-14T22:13:20Z');
    const listing = await text('tar', ['--numeric-owner', '--full-time', '-tvf', a]);
    for (const line of listing.split('\n').filter(Boolean)) expect(line).toMatch(/^[-d]rw.r..r.. 0\/0 +\d+ 2023-11-14 22:13:20 /);
  });

  it('writes a filtered index for --platform and records the upstream digest', async () => {
    const out = join(dir, 'amd64.tar');
    const r = await runFerry(['pack', `${reg.host}/team/app:1.0`, '--platform', 'linux/amd64', '-o', out, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`kept linux/amd64 of the upstream index ${app.digest}`);
    const summary = JSON.parse(r.stdout);
    const img = summary.images[0];
    expect(img.upstreamDigest).toBe(app.digest);
    expect(img.digest).not.toBe(app.digest);
    expect(img.platforms).toEqual(['linux/amd64']);
    const raw = JSON.parse(await text('skopeo', ['inspect', '--raw', `oci-archive:${out}:${reg.host}/team/app:1.0`]));
    expect(raw.manifests.map((m: { digest: string }) => m.digest)).toEqual([app.manifests[0]!.digest]);
    const names = await tarList(out);
    const arm = app.manifests[1]!;
    expect(names).not.toContain(`blobs/sha256/${arm.digest.slice(7)}`);
    expect(names).not.toContain(`blobs/sha256/${arm.layerDigests[1]!.slice(7)}`);
  });

  it('refuses an image without any requested platform, naming what it has', async () => {
    const r = await runFerry(['pack', `${reg.host}/team/app:1.0`, '--platform', 'linux/s390x', '-o', join(dir, 'none.tar')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ferry: ${reg.host}/team/app:1.0 has none of the platforms linux/s390x; it has linux/amd64, linux/arm64/v8\n`);
    await expect(stat(join(dir, 'none.tar'))).rejects.toThrow();
  });

  it('reads -f lists and --spec files, collapsing duplicates', async () => {
    const list = join(dir, 'images.txt');
    await writeFile(list, `# the app\n${reg.host}/team/app:1.0\n\n${reg.host}/team/app:1.0   # again\n`);
    const spec = join(dir, 'spec.yaml');
    await writeFile(spec, `images:\n  - ${reg.host}/team/tools:2.0\nplatforms: [linux/amd64]\noutput: ${join(dir, 'spec.tar')}\n`);
    const r = await runFerry(['pack', '-f', list, '--spec', spec, '--json']);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.output).toBe(join(dir, 'spec.tar'));
    expect(summary.images.map((i: { ref: string }) => i.ref)).toEqual([`${reg.host}/team/tools:2.0`, `${reg.host}/team/app:1.0`]);
    expect(summary.images.every((i: { platforms: string[] }) => i.platforms.join() === 'linux/amd64')).toBe(true);
  });

  it('names the bad field of a spec and the bad line of a list, exit 2', async () => {
    const spec = join(dir, 'bad.yaml');
    await writeFile(spec, 'images:\n  - ok/image:1\n  - 42\nconcurrency: 0\n');
    let r = await runFerry(['pack', '--spec', spec, '-o', join(dir, 'bad.tar')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^ferry: ${spec}: images\\[1\\]: .+\\n$`));
    await writeFile(spec, 'imagez: [a]\n');
    r = await runFerry(['pack', '--spec', spec, '-o', join(dir, 'bad.tar')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('imagez');
    const list = join(dir, 'bad.txt');
    await writeFile(list, 'nginx:1\nNginx:2\n');
    r = await runFerry(['pack', '-f', list, '-o', join(dir, 'bad.tar')]);
    expect(r).toMatchObject({ code: 2, stderr: `ferry: ${list}:2: invalid reference "Nginx:2": repository name must be lowercase ("Nginx")\n` });
    r = await runFerry(['pack', `${reg.host}/team/app:1.0`]);
    expect(r).toMatchObject({ code: 2, stderr: 'ferry: pack needs an output file: -o BUNDLE (or output: in the spec)\n' });
  });

  it('reports the failing image in one line when another image is still downloading, and leaves no bundle', async () => {
    await seedImage(reg, 'team/large:1', { seed: 'large', layers: 2, layerSize: 8 * 1024 * 1024, platforms: ['linux/amd64'] });
    const broken = await seedImage(reg, 'team/broken:1', { seed: 'broken', single: true, layers: 2 });
    const gone = broken.manifests[0]!.layerDigests[1]!;
    expect((await registryFetch(reg, `/v2/team/broken/blobs/${gone}`, { method: 'DELETE' })).status).toBe(202);
    const out = join(dir, 'broken.tar');
    for (let i = 0; i < 3; i++) {
      const r = await runFerry(['pack', `${reg.host}/team/large:1`, `${reg.host}/team/broken:1`, '-o', out, '-q']);
      expect({ code: r.code, stderr: r.stderr }).toEqual({
        code: 1,
        stderr: `ferry: 404 BLOB_UNKNOWN pulling from ${reg.host}/team/broken: blob ${gone} is not there\n`,
      });
      await expect(stat(out)).rejects.toThrow();
    }
  });

  it('resumes after kill -9: no file at the final path, and the rerun gives the identical bundle', async () => {
    const big = await seedImage(reg, 'team/big:1', { seed: 'big', layers: 3, layerSize: 6 * 1024 * 1024, platforms: ['linux/amd64'] });
    const refs = [`${reg.host}/team/big:1`, `${reg.host}/team/app:1.0`];
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const whole = join(dir, 'whole.tar');
    expect((await runFerry(['pack', ...refs, '-o', whole, '-q'], { env })).code).toBe(0);

    const out = join(dir, 'killed.tar');
    // -j 1 and a slow start: kill once the first blobs are journaled.
    const child = spawn(process.execPath, [FERRY_MAIN, 'pack', ...refs, '-o', out, '-q', '-j', '1'], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const journal = `${out}.partial.journal`;
    for (let i = 0; i < 400; i++) {
      const text = await readFile(journal, 'utf8').catch(() => '');
      if (text.split('\n').filter((l) => l.includes('"done"')).length >= 2) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    await expect(stat(out)).rejects.toThrow();
    expect((await stat(`${out}.partial`)).isFile()).toBe(true);

    const r = await runFerry(['pack', ...refs, '-o', out, '--json'], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).resumedBlobs).toBeGreaterThanOrEqual(2);
    expect(await sha256File(out)).toBe(await sha256File(whole));
    await expect(stat(`${out}.partial`)).rejects.toThrow();
    await expect(stat(journal)).rejects.toThrow();
    expect(big.manifests).toHaveLength(1);
  });

  it('never writes through a link at .partial or the journal, and leaves a regular file at the output', async () => {
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'precious\n');
    const out = join(dir, 'linked.tar');
    await symlink(victim, `${out}.partial`);
    await symlink(victim, `${out}.partial.journal`);
    await symlink(victim, out);
    const r = await runFerry(['pack', `${reg.host}/team/app:1.0`, '-o', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
    expect((await lstat(out)).isFile()).toBe(true);
    await expect(lstat(`${out}.partial`)).rejects.toThrow();
    await expect(lstat(`${out}.partial.journal`)).rejects.toThrow();
    expect((await runFerry(['verify', out, '-q'])).code).toBe(0);
  });

  it('a second pack to the same output says another pack is writing it; a lock left by a dead one is taken over', async () => {
    const out = join(dir, 'twice.tar');
    // The lock as a pack that is still running leaves it: its process id.
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(`${out}.partial.lock`, `${holder.pid}\n`);
    const second = await runFerry(['pack', `${reg.host}/team/app:1.0`, '-o', out, '-q']);
    expect(second).toMatchObject({
      code: 1,
      stderr: `ferry: another ferry pack (process ${holder.pid}) is writing ${out}; wait for it to end, or stop it and run this again\n`,
    });
    await expect(stat(out)).rejects.toThrow();
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
    const after = await runFerry(['pack', `${reg.host}/team/app:1.0`, '-o', out, '-q']);
    expect(after.code, after.stderr).toBe(0);
    await expect(lstat(`${out}.partial.lock`)).rejects.toThrow();
    expect((await runFerry(['verify', out, '-q'])).code).toBe(0);
  });

  it('stops cleanly on Ctrl-C: exit 130, one line, journal flushed, .partial kept; the rerun resumes to the identical bundle', async () => {
    await seedImage(reg, 'team/huge:1', { seed: 'huge', layers: 4, layerSize: 8 * 1024 * 1024, platforms: ['linux/amd64'] });
    const refs = [`${reg.host}/team/huge:1`, `${reg.host}/team/app:1.0`];
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const whole = join(dir, 'whole-int.tar');
    expect((await runFerry(['pack', ...refs, '-o', whole, '-q'], { env })).code).toBe(0);

    const out = join(dir, 'interrupted.tar');
    const journal = `${out}.partial.journal`;
    const child = spawn(process.execPath, [FERRY_MAIN, 'pack', ...refs, '-o', out, '-q', '-j', '1'], {
      env: { ...process.env, ...env, HOME: home.dir, DOCKER_CONFIG: home.dockerConfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    for (let i = 0; i < 400; i++) {
      const lines = (await readFile(journal, 'utf8').catch(() => '')).split('\n').filter((l) => l.includes('"done"'));
      if (lines.length >= 2) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', (c) => r(c)));
    expect({ code, stderr }).toEqual({ code: 130, stderr: 'ferry: stopped by SIGINT; run the same command again to go on where it stopped\n' });
    await expect(stat(out)).rejects.toThrow();
    expect((await stat(`${out}.partial`)).isFile()).toBe(true);
    const journaled = (await readFile(journal, 'utf8')).split('\n').filter((l) => l.includes('"done"')).length;
    expect(journaled).toBeGreaterThanOrEqual(2);

    const r = await runFerry(['pack', ...refs, '-o', out, '--json'], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).resumedBlobs).toBe(journaled);
    expect(await sha256File(out)).toBe(await sha256File(whole));
  });
});

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
