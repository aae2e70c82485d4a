// Mirror configs from a load mapping with a --map rule that renames a path:
// registries.conf and k3s express it exactly, containerd (which can only put a
// prefix in front of the repository) reports the image as not covered.
import { lstat, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mirrorAccess, mirrorConfigs, mirrorImages, writeMirrorConfigs } from '../src/cluster/mirror-config.js';
import { TargetMapper } from '../src/load/mapping.js';

const SOURCES = ['docker.io/bitnami/redis:7.2', 'docker.io/library/nginx:1.27', 'quay.io/jetstack/cert-manager-controller:v1.14.0'];
const HEADER = '# Written by ferry from the load mapping: pull these images from the mirror.';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ferry-mirror-config-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function configs() {
  const mapper = new TargetMapper({ to: 'harbor.example/mirror', maps: ['docker.io/bitnami=vendor'] });
  const images = mirrorImages(SOURCES, mapper);
  const access = await mirrorAccess(
    images.map((i) => i.target.registry),
    { caFile: '/etc/ssl/harbor-ca.pem', insecure: () => false },
  );
  return { images, access, out: await mirrorConfigs(images, access) };
}

describe('mirrorConfigs', () => {
  it('writes each format from the mapping, and names what containerd cannot express', async () => {
    const { out } = await configs();
    const text = new Map(out.files.map((f) => [f.path, f.text]));
    expect([...text.keys()]).toEqual([
      'containerd/certs.d/docker.io/hosts.toml',
      'containerd/certs.d/quay.io/hosts.toml',
      'k3s/registries.yaml',
      'containers/registries.conf',
    ]);
    expect(out.uncovered).toEqual(['containerd: docker.io/bitnami/redis -> harbor.example/mirror/vendor/redis']);
    expect(text.get('containerd/certs.d/docker.io/hosts.toml')).toBe(
      [
        HEADER,
        '# On a node: /etc/containerd/certs.d/docker.io/hosts.toml (config_path = "/etc/containerd/certs.d").',
        '# not covered (a --map rule renames the path; containerd can only prefix it): docker.io/bitnami/redis -> harbor.example/mirror/vendor/redis',
        '',
        '[host."https://harbor.example/v2/mirror"]',
        '  capabilities = ["pull", "resolve"]',
        '  override_path = true',
        '  ca = "/etc/ssl/harbor-ca.pem"',
        '',
      ].join('\n'),
    );
    // k3s: rules differ within docker.io, so one exact rewrite per repository (k3s applies them in no set order).
    expect(text.get('k3s/registries.yaml')).toBe(
      [
        HEADER,
        '# On a node: /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml); restart k3s.',
        'mirrors:',
        '  docker.io:',
        '    endpoint:',
        '      - https://harbor.example',
        '    rewrite:',
        '      ^bitnami/redis$: mirror/vendor/redis',
        '      ^library/nginx$: mirror/library/nginx',
        '  quay.io:',
        '    endpoint:',
        '      - https://harbor.example',
        '    rewrite:',
        '      ^(.*)$: mirror/$1',
        'configs:',
        '  harbor.example:',
        '    tls:',
        '      ca_file: /etc/ssl/harbor-ca.pem',
        '',
      ].join('\n'),
    );
    expect(text.get('containers/registries.conf')).toBe(
      [
        HEADER,
        '# On a node: /etc/containers/registries.conf, or a file in /etc/containers/registries.conf.d/.',
        '# harbor.example: put its CA in /etc/containers/certs.d/harbor.example/ca.crt (registries.conf names no CA files).',
        '',
        '[[registry]]',
        'prefix = "docker.io/bitnami"',
        'location = "docker.io/bitnami"',
        '',
        '[[registry.mirror]]',
        'location = "harbor.example/mirror/vendor"',
        '',
        '[[registry]]',
        'prefix = "docker.io"',
        'location = "docker.io"',
        '',
        '[[registry.mirror]]',
        'location = "harbor.example/mirror"',
        '',
        '[[registry]]',
        'prefix = "quay.io"',
        'location = "quay.io"',
        '',
        '[[registry.mirror]]',
        'location = "harbor.example/mirror"',
        '',
      ].join('\n'),
    );
  });

  it('never writes through a link standing for a directory it creates', async () => {
    const { images, access } = await configs();
    const dir = join(tmp, 'out');
    const elsewhere = join(tmp, 'elsewhere');
    await writeMirrorConfigs(elsewhere, images, access);
    await rm(dir, { recursive: true, force: true });
    await writeMirrorConfigs(dir, images, access);
    await rm(join(dir, 'k3s'), { recursive: true });
    await symlink(join(elsewhere, 'k3s'), join(dir, 'k3s'));
    await expect(writeMirrorConfigs(dir, images, access)).rejects.toThrow(
      `${join(dir, 'k3s')} is a symbolic link; ferry writes files below it only in a real directory`,
    );
    expect((await lstat(join(dir, 'k3s'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, 'containers/registries.conf'), 'utf8')).toContain('prefix = "docker.io/bitnami"');
  });
});
