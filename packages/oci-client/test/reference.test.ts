import { describe, expect, it } from 'vitest';
import { FerryError } from '../src/errors.js';
import { formatReference, isLoopbackHost, parseReference, parseRegistryTarget, registryApiHost, repositoryOf, withDigest, withTag } from '../src/reference.js';

const D = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).kind).toBe('usage');
    expect((e as FerryError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parseReference: Docker normalization', () => {
  const cases: Array<[string, string]> = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['library/nginx', 'docker.io/library/nginx:latest'],
    ['bitnami/redis:7.2', 'docker.io/bitnami/redis:7.2'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/nginx:1', 'docker.io/library/nginx:1'],
    ['registry-1.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['registry.hub.docker.com/user/app', 'docker.io/user/app:latest'],
    ['quay.io/prometheus/node-exporter:v1.8.0', 'quay.io/prometheus/node-exporter:v1.8.0'],
    ['ghcr.io/app', 'ghcr.io/app:latest'], // no library/ outside Docker Hub
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b/c:dev', 'localhost:5000/a/b/c:dev'],
    ['myhost:5000/app', 'myhost:5000/app:latest'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['[2001:db8::1]/team/x:1', '[2001:db8::1]/team/x:1'],
    ['Registry/app', 'Registry/app:latest'], // uppercase first component is a host (ParseNormalizedNamed)
    ['a/b/c', 'docker.io/a/b/c:latest'],
    ['foo__bar/a.b-c---d:TAG_x.1-2', 'docker.io/foo__bar/a.b-c---d:TAG_x.1-2'],
    // A bare host:port without a path is a Docker Hub name with a tag, as in Docker.
    ['localhost:5000', 'docker.io/library/localhost:5000'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} -> ${expected}`, () => {
      expect(formatReference(parseReference(input))).toBe(expected);
    });
  }

  it('splits registry, repository, tag and digest', () => {
    expect(parseReference('nginx:1.27')).toEqual({
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: '1.27',
    });
    const pinned = parseReference(`host:5000/a/b@${D}`);
    expect(pinned).toEqual({ registry: 'host:5000', repository: 'a/b', digest: D });
    expect(pinned.tag).toBeUndefined();
    expect(formatReference(pinned)).toBe(`host:5000/a/b@${D}`);
  });

  it('keeps both tag and digest', () => {
    const r = parseReference(`nginx:1.27@${D}`);
    expect(r).toEqual({ registry: 'docker.io', repository: 'library/nginx', tag: '1.27', digest: D });
    expect(formatReference(r)).toBe(`docker.io/library/nginx:1.27@${D}`);
  });

  it('accepts sha512 digests', () => {
    const d512 = `sha512:${'c'.repeat(128)}`;
    expect(parseReference(`x.io/a@${d512}`).digest).toBe(d512);
  });

  it('accepts a 128-character tag and a 255-character path', () => {
    const tag = 'v'.repeat(128);
    expect(parseReference(`nginx:${tag}`).tag).toBe(tag);
    const path = `a/${'b'.repeat(253)}`;
    expect(parseReference(`r.io/${path}`).repository).toBe(path);
  });
});

describe('parseReference: errors', () => {
  it('empty', () => {
    expect(usageMessage(() => parseReference(''))).toBe('invalid reference "": an image reference must not be empty');
  });

  it('uppercase repository', () => {
    expect(usageMessage(() => parseReference('Nginx:1'))).toBe('invalid reference "Nginx:1": repository name must be lowercase ("Nginx")');
    expect(usageMessage(() => parseReference('docker.io/Library/nginx'))).toBe(
      'invalid reference "docker.io/Library/nginx": repository name must be lowercase ("Library/nginx")',
    );
  });

  it('bad tag characters', () => {
    expect(usageMessage(() => parseReference('nginx:-x'))).toBe(
      'invalid reference "nginx:-x": tag "-x" is not valid (use letters, digits, "_", "." and "-", not starting with "." or "-")',
    );
    expect(usageMessage(() => parseReference('nginx:1+2'))).toContain('tag "1+2" is not valid');
    expect(usageMessage(() => parseReference('a/b:c:d'))).toContain('tag "c:d" is not valid');
  });

  it('empty tag', () => {
    expect(usageMessage(() => parseReference('nginx:'))).toBe('invalid reference "nginx:": the tag after ":" is empty');
  });

  it('tag too long', () => {
    const tag = 'a'.repeat(129);
    expect(usageMessage(() => parseReference(`nginx:${tag}`))).toBe(
      `invalid reference "nginx:${tag}": the tag is 129 characters long, more than the 128 allowed`,
    );
  });

  it('bad path components', () => {
    expect(usageMessage(() => parseReference('foo/-bar'))).toBe(
      'invalid reference "foo/-bar": path component "-bar" of repository name "foo/-bar" is not valid (use lowercase letters and digits, separated by ".", "_", "__" or "-")',
    );
    expect(usageMessage(() => parseReference('a..b'))).toContain('path component "a..b"');
    expect(usageMessage(() => parseReference('a___b'))).toContain('path component "a___b"');
    expect(usageMessage(() => parseReference('foo/bar_'))).toContain('path component "bar_"');
    expect(usageMessage(() => parseReference('nginx latest'))).toContain('path component "nginx latest"');
    expect(usageMessage(() => parseReference('r.io/a//b'))).toBe('invalid reference "r.io/a//b": repository name "a//b" has an empty path component');
    expect(usageMessage(() => parseReference('localhost:5000/'))).toBe('invalid reference "localhost:5000/": the repository name is missing');
    expect(usageMessage(() => parseReference(':1'))).toBe('invalid reference ":1": the repository name is missing');
  });

  it('bad registry host', () => {
    expect(usageMessage(() => parseReference('my_host.io/app'))).toBe(
      'invalid reference "my_host.io/app": registry "my_host.io" is not a valid host name, IP address or [IPv6] address with optional :port',
    );
    expect(usageMessage(() => parseReference('host:port/app'))).toContain('registry "host:port"');
  });

  it('bad digests', () => {
    expect(usageMessage(() => parseReference('nginx@sha256:abc'))).toBe(
      'invalid reference "nginx@sha256:abc": digest "sha256:abc" is not valid: a sha256 digest must have 64 lowercase hexadecimal characters after "sha256:", not 3',
    );
    const md5 = `md5:${'0'.repeat(32)}`;
    expect(usageMessage(() => parseReference(`nginx@${md5}`))).toBe(
      `invalid reference "nginx@${md5}": digest "${md5}" is not valid: the algorithm "md5" is not supported (supported: sha256, sha512)`,
    );
    const upper = `sha256:${'A'.repeat(64)}`;
    expect(usageMessage(() => parseReference(`nginx@${upper}`))).toContain('a sha256 digest must have 64 lowercase hexadecimal characters');
    expect(usageMessage(() => parseReference('nginx@'))).toBe('invalid reference "nginx@": the digest after "@" is empty');
  });

  it('refuses a digest or a 64-hex identifier on its own', () => {
    const hex = 'a'.repeat(64);
    expect(usageMessage(() => parseReference(hex))).toBe(`invalid reference "${hex}": a repository name cannot be a 64-character hexadecimal string`);
    expect(usageMessage(() => parseReference(D))).toBe(
      `invalid reference "${D}": a digest alone is not an image reference; name the repository too, e.g. "nginx@${D}"`,
    );
  });

  it('a tag that looks like a git sha is still a tag', () => {
    const sha = '0123456789abcdef0123456789abcdef01234567';
    expect(formatReference(parseReference(`app:${sha}`))).toBe(`docker.io/library/app:${sha}`);
  });

  it('name too long', () => {
    const path = `a/${'b'.repeat(254)}`; // 256 characters
    expect(usageMessage(() => parseReference(`r.io/${path}`))).toBe(
      `invalid reference "r.io/${path}": the repository name is 256 characters long, more than the 255 allowed`,
    );
    // library/ counts: 248 + 8 = 256.
    const name = 'n'.repeat(248);
    expect(usageMessage(() => parseReference(name))).toContain('256 characters long');
  });
});

describe('helpers', () => {
  it('registryApiHost', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('index.docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('quay.io')).toBe('quay.io');
    expect(registryApiHost('localhost:5000')).toBe('localhost:5000');
  });

  it('isLoopbackHost', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]', '[::1]:5000', '[0:0:0:0:0:0:0:1]:5000']) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['docker.io', '128.0.0.1', '10.0.0.1:5000', '127.0.0.256', '[::2]:5000', 'localhost.example.com', '127.0.0.1.nip.io', 'mylocalhost']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('repositoryOf, withDigest, withTag', () => {
    const r = parseReference('nginx:1.27');
    expect(repositoryOf(r)).toBe('docker.io/library/nginx');
    const pinned = withDigest(r, D);
    expect(formatReference(pinned)).toBe(`docker.io/library/nginx:1.27@${D}`);
    expect(formatReference(r)).toBe('docker.io/library/nginx:1.27'); // not mutated
    expect(formatReference(withDigest(pinned, D2))).toBe(`docker.io/library/nginx:1.27@${D2}`);
    expect(formatReference(withTag(parseReference(`x.io/a@${D}`), 'v2'))).toBe(`x.io/a:v2@${D}`);
    expect(formatReference(withTag(r, 'v2'))).toBe('docker.io/library/nginx:v2');
    expect(usageMessage(() => withTag(r, '.bad'))).toContain('tag ".bad" is not valid');
    expect(usageMessage(() => withDigest(r, 'sha256:zz'))).toContain('invalid digest "sha256:zz"');
  });
});

describe('parseRegistryTarget', () => {
  it('parses HOST[:PORT][/PREFIX]', () => {
    expect(parseRegistryTarget('harbor.local/mirror')).toEqual({ registry: 'harbor.local', prefix: 'mirror' });
    expect(parseRegistryTarget('127.0.0.1:5000')).toEqual({ registry: '127.0.0.1:5000', prefix: '' });
    expect(parseRegistryTarget('127.0.0.1:5000/')).toEqual({ registry: '127.0.0.1:5000', prefix: '' });
    expect(parseRegistryTarget('harbor.local:8443/proj/sub')).toEqual({ registry: 'harbor.local:8443', prefix: 'proj/sub' });
    expect(parseRegistryTarget('[::1]:5000/m')).toEqual({ registry: '[::1]:5000', prefix: 'm' });
    expect(parseRegistryTarget('registry')).toEqual({ registry: 'registry', prefix: '' });
    expect(parseRegistryTarget('index.docker.io/me')).toEqual({ registry: 'docker.io', prefix: 'me' });
  });

  it('names the bad part', () => {
    expect(usageMessage(() => parseRegistryTarget('harbor.local/Mirror'))).toBe('invalid registry "harbor.local/Mirror": prefix must be lowercase ("Mirror")');
    expect(usageMessage(() => parseRegistryTarget('https://harbor.local'))).toBe(
      'invalid registry "https://harbor.local": leave out the scheme "https://" and give HOST[:PORT][/PREFIX]',
    );
    expect(usageMessage(() => parseRegistryTarget('harbor.local/a/-b'))).toContain('path component "-b" of prefix "a/-b"');
    expect(usageMessage(() => parseRegistryTarget('harbor.local/m:1'))).toContain('path component "m:1"');
    expect(usageMessage(() => parseRegistryTarget('bad_host/x'))).toContain('registry "bad_host" is not a valid host name');
    expect(usageMessage(() => parseRegistryTarget('h.local:99999/x'))).toBe('invalid registry "h.local:99999/x": port 99999 is not between 1 and 65535');
    expect(usageMessage(() => parseRegistryTarget(''))).toBe('invalid registry "": give a registry as HOST[:PORT][/PREFIX]');
  });
});
