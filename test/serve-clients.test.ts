// ferry serve against the real clients of the isolated side: containerd
// (`ctr images pull --plain-http`), podman (`podman pull --tls-verify=false`,
// vfs storage) and helm (`helm pull oci://…/charts/NAME`, then `helm template`
// of what it pulled) all pull from the served bundle; and the containerd mirror
// use: `ferry mirrors --to <serve address>` hosts.toml lets containerd pull by
// the upstream names with the upstream registry stopped.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, type TestContainerd } from './harness/containerd.js';
import { parseHelmTemplate, podImages, startHelm } from './harness/helm.js';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir } from './harness/process.js';
import { type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn, type ServeProcess, startServe } from './helpers/ferry.js';
import { privatePodman } from './helpers/podman.js';

let src: TestRegistry;
let containerd: TestContainerd;
let dir: string;
let home: FerryHome;
let web: SeededImage;
let hook: SeededImage;
let bundle: string;
let served: ServeProcess;

const runFerry = (args: string[]) => runFerryIn(args, { home, timeoutMs: 120_000 });

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const podman = (args: string[]) => privatePodman(join(dir, 'podman'))(args);

/** The digest `ctr images ls` lists for `ref` in `namespace`. */
async function ctrDigest(namespace: string, ref: string): Promise<string | undefined> {
  const listed = await containerd.ctr(['-n', namespace, 'images', 'ls']);
  return /sha256:[a-f0-9]{64}/.exec(listed.split('\n').find((l) => l.startsWith(`${ref} `)) ?? '')?.[0];
}

beforeAll(async () => {
  [src, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  dir = await makeTempDir('ferry-serve-clients-');
  home = await makeFerryHome();
  const small = { layers: 2, layerSize: 4096 } as const;
  [web, hook] = await Promise.all([
    seedImage(src, 'apps/web:1.0', { ...small, seed: 'web' }),
    seedImage(src, 'apps/hook:3.0', { ...small, seed: 'hook', single: true }),
  ]);
  const chart = join(dir, 'demo');
  await mkdir(join(chart, 'templates'), { recursive: true });
  await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: "1.0"\n');
  await writeFile(join(chart, 'values.yaml'), `image: ${src.host}/apps/web:1.0\n`);
  await writeFile(
    join(chart, 'templates', 'pod.yaml'),
    ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: web', 'spec:', '  containers:', '    - name: web', '      image: {{ .Values.image }}', ''].join('\n'),
  );
  bundle = join(dir, 'day0.tar');
  ok(await runFerry(['pack', `${src.host}/apps/hook:3.0`, '--chart', chart, '-o', bundle, '-q']));
  served = await startServe([bundle, '-q'], { home });
}, 180_000);

afterAll(async () => {
  await served?.stop();
  await Promise.all([src?.stop(), containerd?.stop()]);
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('ferry serve with the real clients', () => {
  it('containerd pulls and unpacks every image (ctr images pull --plain-http)', async () => {
    for (const [ref, image] of [
      ['apps/web:1.0', web],
      ['apps/hook:3.0', hook],
    ] as const) {
      const name = `${served.host}/${ref}`;
      await containerd.ctr(['-n', 'serve-test', 'images', 'pull', '--plain-http', name]);
      expect(await ctrDigest('serve-test', name)).toBe(image.digest);
    }
    const check = await containerd.ctr(['-n', 'serve-test', 'images', 'check']);
    for (const ref of ['apps/web:1.0', 'apps/hook:3.0']) {
      expect(check.split('\n').find((l) => l.startsWith(`${served.host}/${ref} `))).toMatch(/complete.*true\s*$/);
    }
  }, 180_000);

  it('podman pulls the images it would pull from the registry (podman pull --tls-verify=false)', async () => {
    for (const [ref, image] of [
      ['apps/web:1.0', web],
      ['apps/hook:3.0', hook],
    ] as const) {
      await podman(['pull', '-q', '--tls-verify=false', `${served.host}/${ref}`]);
      const id = (await podman(['image', 'inspect', '--format', '{{.Id}}', `${served.host}/${ref}`])).toString('utf8').trim();
      const amd64 = image.manifests.find((m) => m.platform === 'linux/amd64') ?? image.manifests[0]!;
      expect(`sha256:${id}`).toBe(amd64.configDigest);
    }
  }, 180_000);

  it('helm pulls the chart from oci://…/charts/demo, and helm template renders what it pulled', async () => {
    const helm = await startHelm();
    try {
      const out = join(dir, 'helm-pull');
      await mkdir(out);
      await helm.run(['pull', `oci://${served.host}/charts/demo`, '--version', '0.1.0', '--plain-http', '-d', out]);
      expect(await readdir(out)).toEqual(['demo-0.1.0.tgz']);
      const rendered = parseHelmTemplate(await helm.run(['template', 'day0', join(out, 'demo-0.1.0.tgz')]));
      expect(podImages(rendered.map((d) => d.object))).toEqual([`${src.host}/apps/web:1.0`]);
    } finally {
      await helm.close();
    }
  }, 180_000);

  it('as a containerd mirror: ferry mirrors --to the serve address lets ctr pull upstream names with the upstream stopped', async () => {
    const configs = join(dir, 'mirrors');
    ok(await runFerry(['mirrors', bundle, '--to', served.host, '-o', configs]));
    await src.stop();
    const hostsDir = join(configs, 'containerd/certs.d');
    for (const [ref, image] of [
      [`${src.host}/apps/web:1.0`, web],
      [`${src.host}/apps/hook:3.0`, hook],
    ] as const) {
      await containerd.ctr(['-n', 'serve-mirror', 'images', 'pull', '--hosts-dir', hostsDir, ref]);
      expect(await ctrDigest('serve-mirror', ref)).toBe(image.digest);
    }
  }, 180_000);
});
