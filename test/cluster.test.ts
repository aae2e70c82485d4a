// The bundle as the isolated side's runtimes take it: the real Debian containerd
// (`ctr images import`, as k3s/RKE2 preload do) imports and unpacks every image of
// a bundle that also carries a Helm chart, names a digest-pinned image so CRI
// (the kubelet's ImageStatus) finds it as repo:tag@digest, repo@digest and
// repo:tag, and names nothing that is not an image; `podman load` reads the
// Docker-style manifest.json and loads every image under its name.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseReference } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type TestContainerd } from './harness/containerd.js';
import { criImageStatus } from './harness/cri.js';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let src: TestRegistry;
let dst: TestRegistry;
let containerd: TestContainerd;
let dir: string;
let home: FerryHome;
let web: SeededImage;
let hook: SeededImage;
let pinned: SeededImage;
let bundle: string;
let pinnedRef: string;

const runFerry = (args: string[]) => runFerryIn(args, { home });

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

async function writeChart(root: string): Promise<void> {
  await mkdir(join(root, 'templates'), { recursive: true });
  await writeFile(join(root, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: "1.0"\n');
  await writeFile(join(root, 'values.yaml'), `image: ${src.host}/apps/web:1.0\n`);
  await writeFile(
    join(root, 'templates', 'pod.yaml'),
    ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web', 'spec:', '  containers:', '    - name: web', '      image: {{ .Values.image }}', ''].join('\n'),
  );
}

/** The linux/amd64 manifest of a seeded image. */
function amd64(image: SeededImage) {
  return image.manifests.find((m) => m.platform === 'linux/amd64')!;
}

beforeAll(async () => {
  [src, dst, containerd] = await Promise.all([startRegistry(), startRegistry(), startContainerd()]);
  dir = await makeTempDir('ferry-cluster-');
  home = await makeFerryHome();
  const small = { layers: 2, layerSize: 4096 } as const;
  [web, hook, pinned] = await Promise.all([
    seedImage(src, 'apps/web:1.0', { ...small, seed: 'web' }),
    seedImage(src, 'apps/hook:3.0', { ...small, seed: 'hook', single: true }),
    seedImage(src, 'apps/pinned:2.0', { ...small, seed: 'pinned' }),
  ]);
  pinnedRef = `${src.host}/apps/pinned:2.0@${pinned.digest}`;
  const chart = join(dir, 'demo');
  await writeChart(chart);
  bundle = join(dir, 'cluster.tar');
  ok(await runFerry(['pack', `${src.host}/apps/hook:3.0`, pinnedRef, '--chart', chart, '-o', bundle, '-q']));
}, 120_000);

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop(), containerd?.stop()]);
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('ctr images import (containerd 1.6, as k3s and RKE2 preload)', () => {
  it('imports and unpacks every image of a bundle with a chart, and names no chart', async () => {
    const out = await containerd.ctr(['-n', 'k8s.io', 'images', 'import', bundle]);
    const repo = `${src.host}/apps/pinned`;
    expect(out).toContain('done');
    const listed = (await containerd.ctr(['-n', 'k8s.io', 'images', 'ls', '-q'])).trim().split('\n').sort();
    // CRI adds a record per image under its config digest (its image id): the three images', no chart's.
    expect(listed.filter((n) => n.startsWith('sha256:'))).toEqual([amd64(web), hook.manifests[0]!, amd64(pinned)].map((m) => m.configDigest).sort());
    const names = listed.filter((n) => !n.startsWith('sha256:'));
    expect(names).toEqual([`${src.host}/apps/hook:3.0`, `${src.host}/apps/web:1.0`, pinnedRef, `${repo}:2.0`, `${repo}@${pinned.digest}`].sort());
    // Every image is unpacked for this platform (the snapshotter holds its layers).
    const check = await containerd.ctr(['-n', 'k8s.io', 'images', 'check']);
    for (const name of names) {
      const line = check.split('\n').find((l) => l.startsWith(`${name} `));
      expect(line, check).toMatch(/complete.*true\s*$/);
    }
  });

  it('CRI ImageStatus finds a digest-pinned image as repo:tag@digest, repo@digest and repo:tag', async () => {
    const repo = `${src.host}/apps/pinned`;
    for (const name of [pinnedRef, `${repo}@${pinned.digest}`, `${repo}:2.0`]) {
      const image = await criImageStatus(containerd.address, name);
      expect(image, name).toBeDefined();
      expect(image!.id).toBe(amd64(pinned).configDigest);
      expect(image!.repoTags).toContain(`${repo}:2.0`);
      expect(image!.repoDigests).toContain(`${repo}@${pinned.digest}`);
    }
    const web = await criImageStatus(containerd.address, `${src.host}/apps/web:1.0`);
    expect(web?.repoTags).toEqual([`${src.host}/apps/web:1.0`]);
    expect(await criImageStatus(containerd.address, `${repo}:9.9`)).toBeUndefined();
  });
});

describe('podman load (manifest.json, as docker load reads it)', () => {
  it('loads every image of a multi-image bundle under its name, for linux/amd64', async () => {
    const root = join(dir, 'podman');
    const podman = (args: string[]) =>
      run('podman', ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', ...args], 120_000);
    await podman(['load', '-i', bundle]);
    const listed = (await podman(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).toString('utf8').trim().split('\n').sort();
    const id = (image: SeededImage) => amd64(image).configDigest;
    expect(listed).toEqual(
      [`${src.host}/apps/hook:3.0 ${id(hook)}`, `${src.host}/apps/pinned:2.0 ${id(pinned)}`, `${src.host}/apps/web:1.0 ${id(web)}`].sort(),
    );
  });
});

describe('pack --docker-platform', () => {
  it('writes manifest.json for the platform asked for, which verify accepts; pack says what it downloaded', async () => {
    const out = join(dir, 'arm64.tar');
    const r = ok(await runFerry(['pack', `${src.host}/apps/web:1.0`, '--docker-platform', 'linux/arm64', '-o', out]));
    expect(r.stdout).toContain(`${out}: 1 image, `);
    expect(r.stderr).toMatch(/^blob \S+ .+ downloaded$/m);
    expect(r.stderr).not.toMatch(/ uploaded$/m);
    const arm64 = web.manifests.find((m) => m.platform === 'linux/arm64')!;
    const hex = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
    expect(JSON.parse((await run('tar', ['-xOf', out, 'manifest.json'])).toString('utf8'))).toEqual([
      { Config: hex(arm64.configDigest), RepoTags: [`${src.host}/apps/web:1.0`], Layers: arm64.layerDigests.map(hex) },
    ]);
    expect(JSON.parse((await run('tar', ['-xOf', out, 'ferry.json'])).toString('utf8')).inputs.dockerPlatform).toBe('linux/arm64');
    expect(JSON.parse(ok(await runFerry(['verify', out, '--json'])).stdout)).toMatchObject({ ok: true, problems: [] });
  });
});

describe('pack --platform with a digest-pinned image', () => {
  it('warns that the pinned digest will not exist after load, naming the filtered one', async () => {
    const out = join(dir, 'filtered.tar');
    const r = ok(await runFerry(['pack', pinnedRef, '--platform', 'linux/amd64', '-o', out]));
    const ferry = JSON.parse((await run('tar', ['-xOf', out, 'ferry.json'])).toString('utf8'));
    const filtered = ferry.images[0].digest;
    expect(filtered).not.toBe(pinned.digest);
    expect(r.stderr).toContain(
      `warning: ${pinnedRef} is pinned to ${pinned.digest}, which the bundle cannot carry filtered: after load, whatever pulls @${pinned.digest} fails; it will be there as ${filtered}`,
    );
  });
});

describe('ferry still reads the bundle whole', () => {
  it('inspect, verify and load see the chart by its name from ferry.json', async () => {
    const inspect = JSON.parse(ok(await runFerry(['inspect', bundle, '--json'])).stdout);
    expect(inspect.charts.map((c: { reference: string }) => c.reference)).toEqual(['charts/demo:0.1.0']);
    const verify = JSON.parse(ok(await runFerry(['verify', bundle, '--json'])).stdout);
    expect(verify).toMatchObject({ ok: true, problems: [], charts: [{ ref: 'charts/demo:0.1.0', ok: true }] });
    const loaded = JSON.parse(ok(await runFerry(['load', bundle, '--to', dst.host, '--json'])).stdout);
    expect(loaded.images.map((i: { source: string }) => i.source)).toEqual([`${src.host}/apps/hook:3.0`, pinnedRef, `${src.host}/apps/web:1.0`]);
    expect(loaded.charts.map((c: { target: string }) => c.target)).toEqual([`${dst.host}/charts/demo:0.1.0`]);
    // The text names a pinned image's digest once.
    const text = ok(await runFerry(['load', bundle, '--to', `${dst.host}/lines`, '-q'])).stdout.split('\n');
    expect(text).toContain(`${pinnedRef} -> ${dst.host}/lines/apps/pinned:2.0@${pinned.digest}`);
  });

  it('reads a format 1 bundle, whose index.json names the chart and has no aliases or manifest.json', async () => {
    const x = join(dir, 'v1');
    await mkdir(x);
    await run('tar', ['-xf', bundle, '-C', x]);
    const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8'));
    index.manifests = index.manifests
      .filter((d: { annotations?: Record<string, string> }) => !d.annotations || d.annotations['org.opencontainers.image.ref.name'])
      .map((d: { mediaType: string; digest: string; size: number; annotations?: object; artifactType?: string }) =>
        d.artifactType
          ? {
              mediaType: d.mediaType,
              digest: d.digest,
              size: d.size,
              annotations: { 'org.opencontainers.image.ref.name': 'charts/demo:0.1.0' },
              artifactType: d.artifactType,
            }
          : d,
      );
    await writeFile(join(x, 'index.json'), JSON.stringify(index));
    const ferry = JSON.parse(await readFile(join(x, 'ferry.json'), 'utf8'));
    await writeFile(join(x, 'ferry.json'), `${JSON.stringify({ ...ferry, formatVersion: 1 }, null, 2)}\n`);
    await rm(join(x, 'manifest.json'));
    const old = join(dir, 'v1.tar');
    await run('tar', ['-cf', old, '-C', x, 'oci-layout', 'index.json', 'ferry.json', 'blobs']);
    const verify = JSON.parse(ok(await runFerry(['verify', old, '--json'])).stdout);
    expect(verify).toMatchObject({ ok: true, problems: [], charts: [{ ref: 'charts/demo:0.1.0', ok: true }] });
    expect(verify.images.map((i: { ref: string }) => i.ref)).toEqual([`${src.host}/apps/hook:3.0`, pinnedRef, `${src.host}/apps/web:1.0`]);
    const loaded = JSON.parse(ok(await runFerry(['load', old, '--to', `${dst.host}/v1`, '--json'])).stdout);
    expect(loaded.charts.map((c: { target: string }) => c.target)).toEqual([`${dst.host}/v1/charts/demo:0.1.0`]);
  });

  it('verify fails a bundle whose manifest.json was changed (it is outside the bundle id)', async () => {
    const x = join(dir, 'tampered');
    await mkdir(x);
    await run('tar', ['-xf', bundle, '-C', x]);
    const entries = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8'));
    [entries[0].RepoTags, entries[1].RepoTags] = [entries[1].RepoTags, entries[0].RepoTags];
    await writeFile(join(x, 'manifest.json'), `${JSON.stringify(entries)}\n`);
    const r = await runFerry(['verify', x, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual([
      'manifest.json is not the one index.json gives: docker load and podman load would load other images under these names',
    ]);
  });
});

describe('ferry load --mirror-config and ferry mirrors: runtimes pull upstream names from the mirror', () => {
  it('containerd (hosts.toml) and skopeo (registries.conf) resolve every image from the mirror with the upstream stopped', async () => {
    const configs = join(dir, 'mirror-config');
    const loaded = ok(await runFerry(['load', bundle, '--to', `${dst.host}/mirror`, '--mirror-config', configs, '--json']));
    expect(JSON.parse(loaded.stdout).mirrorConfig).toEqual({
      dir: configs,
      files: [`containerd/certs.d/${src.host}/hosts.toml`, 'k3s/registries.yaml', 'containers/registries.conf'],
      uncovered: [],
    });
    const header = '# Written by ferry from the load mapping: pull these images from the mirror.';
    expect(await readFile(join(configs, 'containerd/certs.d', src.host, 'hosts.toml'), 'utf8')).toBe(
      [
        header,
        `# On a node: /etc/containerd/certs.d/${src.host}/hosts.toml (config_path = "/etc/containerd/certs.d").`,
        '',
        `[host."http://${dst.host}/v2/mirror"]`,
        '  capabilities = ["pull", "resolve"]',
        '  override_path = true',
        '',
      ].join('\n'),
    );
    expect(await readFile(join(configs, 'k3s/registries.yaml'), 'utf8')).toBe(
      [
        header,
        '# On a node: /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml); restart k3s.',
        'mirrors:',
        `  ${src.host}:`,
        '    endpoint:',
        `      - http://${dst.host}`,
        '    rewrite:',
        '      ^(.*)$: mirror/$1',
        '',
      ].join('\n'),
    );
    expect(await readFile(join(configs, 'containers/registries.conf'), 'utf8')).toBe(
      [
        header,
        '# On a node: /etc/containers/registries.conf, or a file in /etc/containers/registries.conf.d/.',
        '',
        '[[registry]]',
        `prefix = "${src.host}"`,
        `location = "${src.host}"`,
        '',
        '[[registry.mirror]]',
        `location = "${dst.host}/mirror"`,
        'insecure = true',
        '',
      ].join('\n'),
    );
    // Offline, from the bundle and the same mapping: the same files.
    const offline = join(dir, 'mirrors-offline');
    ok(await runFerry(['mirrors', bundle, '--to', `${dst.host}/mirror`, '-o', offline]));
    for (const f of [`containerd/certs.d/${src.host}/hosts.toml`, 'k3s/registries.yaml', 'containers/registries.conf']) {
      expect(await readFile(join(offline, f), 'utf8')).toBe(await readFile(join(configs, f), 'utf8'));
    }

    await src.stop();
    const hostsDir = join(configs, 'containerd/certs.d');
    const cases: Array<[string, SeededImage]> = [
      [`${src.host}/apps/web:1.0`, web],
      [`${src.host}/apps/hook:3.0`, hook],
      [pinnedRef, pinned],
    ];
    for (const [ref, image] of cases) {
      // A namespace of its own, with isolated content: every blob comes from the mirror.
      await containerd.ctr(['-n', 'mirror-test', 'images', 'pull', '--hosts-dir', hostsDir, ref]);
      const listed = await containerd.ctr(['-n', 'mirror-test', 'images', 'ls']);
      expect(listed.split('\n').find((l) => l.startsWith(`${ref} `))).toContain(image.digest);
      // skopeo reads the manifest through the mirror (tag listing never uses mirrors, so --raw).
      // skopeo takes no tag and digest together: repo@digest and repo:tag instead.
      const r = parseReference(ref);
      const names = r.digest ? [`${r.registry}/${r.repository}@${r.digest}`, `${r.registry}/${r.repository}:${r.tag}`] : [ref];
      for (const name of names) {
        const raw = await run('skopeo', ['inspect', '--registries-conf', join(configs, 'containers/registries.conf'), '--raw', `docker://${name}`]);
        expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`, name).toBe(image.digest);
      }
    }
  });
});
