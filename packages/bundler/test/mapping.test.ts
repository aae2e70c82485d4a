// Where images go on load (DESIGN.md section 3): TargetMapper, without any registry.

import { FerryError, formatReference, parseReference } from '@ferry/oci-client';
import { describe, expect, it } from 'vitest';
import { type MappingOptions, TargetMapper } from '../src/load/mapping.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** The full target reference of `source`. */
function target(opts: MappingOptions, source: string): string {
  return formatReference(new TargetMapper(opts).map(source));
}

/** The usage error (exit 2) that `fn` throws, as its message. */
function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).kind).toBe('usage');
    expect((e as FerryError).exitCode).toBe(2);
    return (e as FerryError).message;
  }
  throw new Error('expected a usage error, got none');
}

describe('TargetMapper: default mapping drops the source host', () => {
  it('puts the repository path under --to', () => {
    expect(target({ to: 'harbor.local/mirror' }, 'docker.io/library/nginx:1.27')).toBe('harbor.local/mirror/library/nginx:1.27');
    // Short Docker Hub names are normalized first.
    expect(target({ to: 'harbor.local/mirror' }, 'nginx:1.27')).toBe('harbor.local/mirror/library/nginx:1.27');
    expect(target({ to: 'harbor.local/mirror' }, 'bitnami/redis:7.2')).toBe('harbor.local/mirror/bitnami/redis:7.2');
    expect(target({ to: 'harbor.local/mirror' }, 'ghcr.io/org/team/app:v1')).toBe('harbor.local/mirror/org/team/app:v1');
    expect(target({ to: 'harbor.local/mirror' }, '127.0.0.1:5000/team/app:1.0')).toBe('harbor.local/mirror/team/app:1.0');
  });

  it('takes --to with a port, a deep prefix, no prefix, or a trailing slash', () => {
    expect(target({ to: '127.0.0.1:5000' }, 'quay.io/prometheus/node-exporter:v1.8.0')).toBe('127.0.0.1:5000/prometheus/node-exporter:v1.8.0');
    expect(target({ to: 'registry.example.com:8443/a/b' }, 'nginx:1')).toBe('registry.example.com:8443/a/b/library/nginx:1');
    expect(target({ to: 'harbor.local/mirror/' }, 'nginx:1')).toBe('harbor.local/mirror/library/nginx:1');
    // An untagged source is :latest, as everywhere.
    expect(target({ to: 'harbor.local' }, 'nginx')).toBe('harbor.local/library/nginx:latest');
  });

  it('keeps a digest-pinned source pinned: digest only, or tag and digest', () => {
    const pinned = new TargetMapper({ to: 'harbor.local/mirror' }).map(`ghcr.io/org/app@${DIGEST}`);
    expect(pinned).toEqual({ registry: 'harbor.local', repository: 'mirror/org/app', digest: DIGEST });
    expect(formatReference(pinned)).toBe(`harbor.local/mirror/org/app@${DIGEST}`);
    const both = new TargetMapper({ to: 'harbor.local/mirror' }).map(`ghcr.io/org/app:1.0@${DIGEST}`);
    expect(both).toEqual({ registry: 'harbor.local', repository: 'mirror/org/app', tag: '1.0', digest: DIGEST });
  });

  it('exposes the parsed target', () => {
    expect(new TargetMapper({ to: 'harbor.local:8080/mirror/x' }).target).toEqual({ registry: 'harbor.local:8080', prefix: 'mirror/x' });
  });
});

describe('TargetMapper: --keep-source-registry', () => {
  it('keeps the source host as the first path part', () => {
    expect(target({ to: 'harbor.local/mirror', keepSourceRegistry: true }, 'docker.io/library/nginx:1.27')).toBe(
      'harbor.local/mirror/docker.io/library/nginx:1.27',
    );
    expect(target({ to: 'harbor.local', keepSourceRegistry: true }, 'nginx:1.27')).toBe('harbor.local/docker.io/library/nginx:1.27');
    expect(target({ to: 'harbor.local', keepSourceRegistry: true }, 'ghcr.io/org/app:v1')).toBe('harbor.local/ghcr.io/org/app:v1');
  });

  it('turns a host with a port into a valid path component', () => {
    const t = target({ to: 'harbor.local/mirror', keepSourceRegistry: true }, '127.0.0.1:5000/team/app:1.0');
    expect(t).toBe('harbor.local/mirror/127.0.0.1_5000/team/app:1.0');
    expect(parseReference(t).repository).toBe('mirror/127.0.0.1_5000/team/app');
    expect(target({ to: 'harbor.local', keepSourceRegistry: true }, 'localhost:5000/x:1')).toBe('harbor.local/localhost_5000/x:1');
  });

  it('separates same-named images of different registries that the default mapping would merge', () => {
    const sources = ['docker.io/library/nginx:1.27', 'quay.io/library/nginx:1.27'];
    const mapped = new TargetMapper({ to: 'harbor.local', keepSourceRegistry: true }).mapAll(sources);
    expect(mapped.map((m) => [m.source, formatReference(m.target)])).toEqual([
      ['docker.io/library/nginx:1.27', 'harbor.local/docker.io/library/nginx:1.27'],
      ['quay.io/library/nginx:1.27', 'harbor.local/quay.io/library/nginx:1.27'],
    ]);
  });
});

describe('TargetMapper: --map SRC_PREFIX=DST_PREFIX', () => {
  const maps = [
    'docker.io/bitnami=vendor/bitnami', // relative: under --to
    'docker.io/bitnami/redis=cache.local:5000/redis', // absolute: a host of its own
    'docker.io=hub',
  ];
  const opts: MappingOptions = { to: 'harbor.local/mirror', maps };

  it('lets the longest matching prefix win, whatever the order of the rules', () => {
    expect(target(opts, 'docker.io/bitnami/redis:7.2')).toBe('cache.local:5000/redis:7.2');
    expect(target(opts, 'docker.io/bitnami/redis/sentinel:7.2')).toBe('cache.local:5000/redis/sentinel:7.2');
    expect(target(opts, 'docker.io/bitnami/nginx:1.27')).toBe('harbor.local/mirror/vendor/bitnami/nginx:1.27');
    expect(target(opts, 'nginx:1.27')).toBe('harbor.local/mirror/hub/library/nginx:1.27');
    expect(target({ ...opts, maps: [...maps].reverse() }, 'docker.io/bitnami/redis:7.2')).toBe('cache.local:5000/redis:7.2');
  });

  it('matches prefixes at path boundaries only', () => {
    // docker.io/bitnami must not catch docker.io/bitnamix/…: the docker.io rule does.
    expect(target(opts, 'docker.io/bitnamix/x:1')).toBe('harbor.local/mirror/hub/bitnamix/x:1');
    expect(target(opts, 'docker.io/bitnami/redis-cluster:7')).toBe('harbor.local/mirror/vendor/bitnami/redis-cluster:7');
    expect(target({ to: 'harbor.local/mirror', maps: ['docker.io/bitnami=vendor'] }, 'docker.io/bitnamix/x:1')).toBe('harbor.local/mirror/bitnamix/x:1');
  });

  it('falls back to the default mapping for sources no rule matches', () => {
    expect(target(opts, 'quay.io/org/app:1')).toBe('harbor.local/mirror/org/app:1');
    expect(target({ ...opts, keepSourceRegistry: true }, 'quay.io/org/app:1')).toBe('harbor.local/mirror/quay.io/org/app:1');
  });

  it('wins over --keep-source-registry', () => {
    expect(target({ ...opts, keepSourceRegistry: true }, 'docker.io/bitnami/nginx:1')).toBe('harbor.local/mirror/vendor/bitnami/nginx:1');
  });

  it('reads a prefix without a host as Docker Hub, and a host-only prefix as the whole registry', () => {
    expect(target({ to: 'harbor.local', maps: ['bitnami=vendor'] }, 'docker.io/bitnami/nginx:1')).toBe('harbor.local/vendor/nginx:1');
    expect(target({ to: 'harbor.local', maps: ['quay.io=q'] }, 'quay.io/org/app:1')).toBe('harbor.local/q/org/app:1');
    expect(target({ to: 'harbor.local', maps: ['127.0.0.1:5000/team=t'] }, '127.0.0.1:5000/team/app:1')).toBe('harbor.local/t/app:1');
    // index.docker.io is Docker Hub.
    expect(target({ to: 'harbor.local', maps: ['index.docker.io/bitnami=v'] }, 'bitnami/nginx:1')).toBe('harbor.local/v/nginx:1');
  });

  it('maps a whole repository onto another name, and keeps digests', () => {
    expect(target({ to: 'harbor.local', maps: ['docker.io/library/nginx=web/nginx-upstream'] }, `nginx:1.27@${DIGEST}`)).toBe(
      `harbor.local/web/nginx-upstream:1.27@${DIGEST}`,
    );
    expect(target({ to: 'harbor.local', maps: ['ghcr.io/org/app=other.local/app'] }, `ghcr.io/org/app@${DIGEST}`)).toBe(`other.local/app@${DIGEST}`);
  });

  it('refuses a rule that leaves no repository name', () => {
    expect(usage(() => target({ to: 'harbor.local', maps: ['docker.io/bitnami/nginx=other.local'] }, 'docker.io/bitnami/nginx:1'))).toBe(
      '--map sends docker.io/bitnami/nginx:1 to other.local without a repository name',
    );
  });
});

describe('TargetMapper: collisions are found before anything is pushed', () => {
  it('refuses two sources that map to one target, naming both and the target', () => {
    const sources = ['docker.io/library/nginx:1.27', 'quay.io/library/nginx:1.27'];
    expect(usage(() => new TargetMapper({ to: 'harbor.local/mirror' }).mapAll(sources))).toBe(
      'docker.io/library/nginx:1.27 and quay.io/library/nginx:1.27 would both be loaded as harbor.local/mirror/library/nginx:1.27; add a --map rule to separate them',
    );
  });

  it('refuses --map rules that merge two repositories', () => {
    const mapper = new TargetMapper({ to: 'h.local', maps: ['quay.io/a=x', 'ghcr.io/b=x'] });
    expect(usage(() => mapper.mapAll(['quay.io/a/c:1', 'ghcr.io/b/c:1']))).toBe(
      'quay.io/a/c:1 and ghcr.io/b/c:1 would both be loaded as h.local/x/c:1; add a --map rule to separate them',
    );
  });

  it('accepts a --map rule that separates them, different tags of one repository, and a repeated source', () => {
    const mapper = new TargetMapper({ to: 'harbor.local/mirror', maps: ['quay.io=quay'] });
    const mapped = mapper.mapAll(['docker.io/library/nginx:1.27', 'quay.io/library/nginx:1.27', 'nginx:1.26', 'docker.io/library/nginx:1.27']);
    expect(mapped.map((m) => formatReference(m.target))).toEqual([
      'harbor.local/mirror/library/nginx:1.27',
      'harbor.local/mirror/quay/library/nginx:1.27',
      'harbor.local/mirror/library/nginx:1.26',
      'harbor.local/mirror/library/nginx:1.27',
    ]);
  });
});

describe('TargetMapper: bad --to and --map values are usage errors (exit 2)', () => {
  it.each([
    ['Bad Host', 'invalid registry "Bad Host": registry "Bad Host" is not a valid host name, IP address or [IPv6] address with optional :port'],
    ['', 'invalid registry "": give a registry as HOST[:PORT][/PREFIX]'],
    ['https://harbor.local/mirror', 'invalid registry "https://harbor.local/mirror": leave out the scheme "https://" and give HOST[:PORT][/PREFIX]'],
    ['harbor.local/Mirror', 'invalid registry "harbor.local/Mirror": prefix must be lowercase ("Mirror")'],
    ['harbor.local//x', 'invalid registry "harbor.local//x": prefix "/x" has an empty path component'],
    ['/mirror', 'invalid registry "/mirror": the registry host is missing'],
    ['harbor_local', 'invalid registry "harbor_local": registry "harbor_local" is not a valid host name, IP address or [IPv6] address with optional :port'],
  ])('--to %j', (to, message) => {
    expect(usage(() => new TargetMapper({ to }))).toBe(message);
  });

  it.each([
    ['docker.io/bitnami', 'invalid --map "docker.io/bitnami": write SRC_PREFIX=DST_PREFIX, e.g. docker.io/bitnami=harbor.local/vendor'],
    ['=vendor', 'invalid --map "=vendor": write SRC_PREFIX=DST_PREFIX, e.g. docker.io/bitnami=harbor.local/vendor'],
    ['docker.io/bitnami=', 'invalid --map "docker.io/bitnami=": write SRC_PREFIX=DST_PREFIX, e.g. docker.io/bitnami=harbor.local/vendor'],
    ['docker.io/Bitnami=vendor', 'invalid --map "docker.io/Bitnami=vendor": "docker.io/Bitnami" is not a registry or repository prefix'],
    ['docker.io/nginx:1.27=vendor', 'invalid --map "docker.io/nginx:1.27=vendor": "docker.io/nginx:1.27" is not a registry or repository prefix'],
    // A relative destination is named as written, not as the `x/…` it is checked as.
    ['docker.io/bitnami=Vendor', 'invalid --map "docker.io/bitnami=Vendor": prefix must be lowercase ("Vendor")'],
    [
      'docker.io/bitnami=https://other.local',
      'invalid --map "docker.io/bitnami=https://other.local": leave out the scheme "https://" and give HOST[:PORT][/PREFIX]',
    ],
    [
      'docker.io/bitnami=other.local:http/x',
      'invalid --map "docker.io/bitnami=other.local:http/x": registry "other.local:http" is not a valid host name, IP address or [IPv6] address with optional :port',
    ],
  ])('--map %j', (rule, message) => {
    expect(usage(() => new TargetMapper({ to: 'harbor.local/mirror', maps: [rule] }))).toBe(message);
  });

  it('refuses a target reference that is too long', () => {
    const to = `harbor.local/${'p'.repeat(200)}`;
    expect(usage(() => target({ to }, `ghcr.io/${'r'.repeat(60)}/app:1`))).toMatch(/^invalid reference "harbor\.local\/p+\/r+\/app:1": /);
  });
});
