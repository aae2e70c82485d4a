// Classic Helm repositories: index.yaml (relative and absolute urls, digests),
// version choice with helm's semantics (exact, Masterminds constraints, newest
// release by default), Basic auth only to the repository's origin, .prov files,
// repositories.yaml and --repo flags, and the errors that name what exists.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChartRepository, indexYaml, sha256Hex, startChartRepository, tgzOf } from '../../../test/helpers/chart-fixtures.js';
import { loadChart } from '../src/chart-load.js';
import { indexUrl, parseRepoIndex, pickVersion, resolveChartUrl } from '../src/repo/index-file.js';
import { HelmRepositories, parseRepoChartName } from '../src/repo/repo-client.js';
import { configuredRepositories, helmRepositoryConfigPath, parseRepoFlag, parseRepositoriesYaml } from '../src/repo/repositories.js';

const VERSIONS = ['1.0.0', '4.1.3', '4.1.7', '4.2.0', '5.0.0-rc.1'];
let work: string;
let repo: ChartRepository;
let other: ChartRepository;
const archives = new Map<string, Buffer>();
const noRetry = { transport: { retry: { budgetMs: 0 } } };

async function chartTgz(name: string, version: string): Promise<Buffer> {
  const dir = join(work, `${name}-${version}`);
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: ${version}\n`);
  await writeFile(join(dir, 'values.yaml'), `image: example.org/${name}:${version}\n`);
  return tgzOf(dir, name);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-helm-repo-'));
  for (const v of VERSIONS) archives.set(v, await chartTgz('demo', v));
  repo = await startChartRepository(new Map(), { auth: { username: 'reader', password: 's3cret' }, authPrefix: '/private/' });
  other = await startChartRepository(new Map());
  const files = repo.files;
  // 4.2.0 is on another origin (absolute url); the rest relative to the repository
  const entries = VERSIONS.map((v) =>
    v === '4.2.0'
      ? { name: 'demo', version: v, urls: [`${other.origin}/abs/demo-${v}.tgz`], digest: sha256Hex(archives.get(v)!) }
      : { name: 'demo', version: v, urls: [`charts/demo-${v}.tgz`], digest: sha256Hex(archives.get(v)!) },
  );
  files.set(
    '/repo/index.yaml',
    Buffer.from(indexYaml([...entries, { name: 'broken', version: '1.0.0', urls: ['charts/demo-1.0.0.tgz'], digest: 'ab'.repeat(32) }])),
  );
  for (const v of VERSIONS) files.set(`/repo/charts/demo-${v}.tgz`, archives.get(v)!);
  files.set('/repo/charts/demo-1.0.0.tgz.prov', Buffer.from('-----BEGIN PGP SIGNED MESSAGE-----\nprovenance of demo 1.0.0\n'));
  other.files.set('/abs/demo-4.2.0.tgz', archives.get('4.2.0')!);
  // a private repository: Basic auth on everything under /private/, one chart url on the other origin
  files.set(
    '/private/index.yaml',
    Buffer.from(
      indexYaml([
        { name: 'demo', version: '1.0.0', urls: ['demo-1.0.0.tgz'], digest: sha256Hex(archives.get('1.0.0')!) },
        { name: 'demo', version: '4.2.0', urls: [`${other.origin}/abs/demo-4.2.0.tgz`] },
      ]),
    ),
  );
  files.set('/private/demo-1.0.0.tgz', archives.get('1.0.0')!);
});

afterAll(async () => {
  await repo?.close();
  await other?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('index.yaml', () => {
  it('resolves relative urls against the repository as a directory (query kept) and leaves absolute ones', () => {
    expect(resolveChartUrl('https://h.example/charts', 'demo-1.0.0.tgz')).toBe('https://h.example/charts/demo-1.0.0.tgz');
    expect(resolveChartUrl('https://h.example/charts/', 'sub/demo-1.0.0.tgz')).toBe('https://h.example/charts/sub/demo-1.0.0.tgz');
    expect(resolveChartUrl('https://h.example/charts?tok=1', '../x/demo.tgz')).toBe('https://h.example/x/demo.tgz?tok=1');
    expect(resolveChartUrl('https://h.example/charts', 'https://cdn.example/demo.tgz')).toBe('https://cdn.example/demo.tgz');
    expect(indexUrl('https://h.example/charts/')).toBe('https://h.example/charts/index.yaml');
    expect(indexUrl('https://h.example/charts?tok=1')).toBe('https://h.example/charts/index.yaml?tok=1');
  });

  it('picks versions as helm does: exact first, Masterminds constraints, newest release by default', () => {
    const index = parseRepoIndex(indexYaml(VERSIONS.map((v) => ({ name: 'demo', version: v, urls: [`demo-${v}.tgz`] }))), 'repository t');
    const versions = index.get('demo')!;
    expect(versions.map((v) => v.version)).toEqual(['5.0.0-rc.1', '4.2.0', '4.1.7', '4.1.3', '1.0.0']);
    const pick = (c: string | undefined) => pickVersion(versions, c, 'repository t')?.version;
    expect(pick(undefined)).toBe('4.2.0');
    expect(pick('')).toBe('4.2.0');
    expect(pick('4.1.x')).toBe('4.1.7');
    expect(pick('4.1')).toBe('4.1.7');
    expect(pick('~4.1')).toBe('4.1.7');
    expect(pick('~4.1.3')).toBe('4.1.7');
    expect(pick('^4.1.3')).toBe('4.2.0');
    expect(pick('>=4 <5')).toBe('4.2.0');
    expect(pick('>=4, <4.2')).toBe('4.1.7');
    expect(pick('<2 || >=4.2')).toBe('4.2.0');
    expect(pick('1.0.0')).toBe('1.0.0');
    expect(pick('v1.0.0')).toBe('1.0.0');
    expect(pick('4.1.3')).toBe('4.1.3');
    // a prerelease only by name, or by a constraint that has a prerelease part (Masterminds, unlike npm's tuple rule)
    expect(pick('5.0.0-rc.1')).toBe('5.0.0-rc.1');
    expect(pick('>=4.5.0-0')).toBe('5.0.0-rc.1');
    expect(pick('>=5')).toBeUndefined();
    expect(pick('9.x')).toBeUndefined();
    expect(() => pick('latest!')).toThrow('repository t: version "latest!" is neither a version nor a constraint');
  });

  it('refuses an index without entries', () => {
    expect(() => parseRepoIndex('apiVersion: v1\n', 'repository r (https://r.example)')).toThrow(
      'repository r (https://r.example): index.yaml has no "entries"; is it a Helm chart repository?',
    );
  });
});

describe('HelmRepositories', () => {
  const demo = () => ({ name: 'demo', url: `${repo.origin}/repo` });

  it('pulls the newest release from an absolute url, and a constraint from a relative one, digests checked', async () => {
    const repos = new HelmRepositories({ entries: [demo()], ...noRetry });
    try {
      const latest = await repos.pull(demo(), 'demo');
      expect(latest.version).toBe('4.2.0');
      expect(latest.url).toBe(`${other.origin}/abs/demo-4.2.0.tgz`);
      expect(latest.archive.equals(archives.get('4.2.0')!)).toBe(true);
      expect(latest.provenance).toBeUndefined();
      const minor = await repos.pull(demo(), 'demo', '4.1.x');
      expect(minor.version).toBe('4.1.7');
      expect(minor.url).toBe(`${repo.origin}/repo/charts/demo-4.1.7.tgz`);
      expect(minor.archive.equals(archives.get('4.1.7')!)).toBe(true);
      // the index is read once per command
      expect(repo.requests.filter((r) => r.path === '/repo/index.yaml')).toHaveLength(1);
    } finally {
      await repos.close();
    }
  });

  it('carries the .prov file beside the archive', async () => {
    const repos = new HelmRepositories({ entries: [demo()], ...noRetry });
    try {
      const got = await repos.pull(demo(), 'demo', '1.0.0');
      expect(got.provenance?.toString()).toBe('-----BEGIN PGP SIGNED MESSAGE-----\nprovenance of demo 1.0.0\n');
    } finally {
      await repos.close();
    }
  });

  it('names the repository, the chart and the versions that exist', async () => {
    const repos = new HelmRepositories({ entries: [demo()], ...noRetry });
    const label = `repository demo (${repo.origin}/repo)`;
    try {
      await expect(repos.pull(demo(), 'demo', '9.x')).rejects.toThrow(
        new FerryError('not-found', `${label}: chart demo has no version "9.x"; versions: 5.0.0-rc.1, 4.2.0, 4.1.7, 4.1.3, 1.0.0`),
      );
      await expect(repos.pull(demo(), 'nope')).rejects.toThrow(`${label} has no chart "nope"; its charts: broken, demo`);
      const wrong = repos.pull(demo(), 'broken');
      await expect(wrong).rejects.toThrow(
        `${label}: chart broken 1.0.0 from ${repo.origin}/repo/charts/demo-1.0.0.tgz has digest sha256:${sha256Hex(archives.get('1.0.0')!)}, but index.yaml says sha256:${'ab'.repeat(32)}`,
      );
      await expect(wrong).rejects.toMatchObject({ kind: 'integrity' });
      const missing = { name: 'gone', url: `${repo.origin}/gone` };
      await expect(repos.pull(missing, 'demo')).rejects.toThrow(
        `repository gone (${repo.origin}/gone): index.yaml ${repo.origin}/gone/index.yaml: not found (HTTP 404)`,
      );
    } finally {
      await repos.close();
    }
  });

  it('sends Basic auth to the repository origin only, and says when it is missing', async () => {
    const url = `${repo.origin}/private`;
    const before = repo.requests.length;
    const anonymous = new HelmRepositories({ entries: [], ...noRetry });
    try {
      await expect(anonymous.pull({ name: 'p', url }, 'demo', '1.0.0')).rejects.toThrow(
        `repository p (${url}): index.yaml ${url}/index.yaml: HTTP 401; it needs credentials: username and password in repositories.yaml (helm repo add --username), or --repo NAME=https://USER:PASSWORD@HOST/PATH`,
      );
    } finally {
      await anonymous.close();
    }
    const entry = { name: 'p', url, username: 'reader', password: 's3cret' };
    const repos = new HelmRepositories({ entries: [entry], ...noRetry });
    try {
      expect((await repos.pull(entry, 'demo', '1.0.0')).archive.equals(archives.get('1.0.0')!)).toBe(true);
      const foreign = other.requests.length;
      expect((await repos.pull(entry, 'demo', '4.2.0')).archive.equals(archives.get('4.2.0')!)).toBe(true);
      expect(other.requests.slice(foreign).map((r) => r.authorization)).toEqual([undefined, undefined]);
      const basic = `Basic ${Buffer.from('reader:s3cret').toString('base64')}`;
      expect(repo.requests.slice(before + 1).map((r) => `${r.path} ${r.authorization}`)).toEqual([
        `/private/index.yaml ${basic}`,
        `/private/demo-1.0.0.tgz ${basic}`,
        `/private/demo-1.0.0.tgz.prov ${basic}`,
      ]);
      const wrong = new HelmRepositories({ entries: [], ...noRetry });
      await expect(wrong.pull({ ...entry, password: 'nope' }, 'demo')).rejects.toThrow(
        `repository p (${url}): index.yaml ${url}/index.yaml: HTTP 401; the credentials were refused`,
      );
      await wrong.close();
    } finally {
      await repos.close();
    }
  });

  it('pulls a chart by URL with the credentials of the configured repository it is under', async () => {
    const entry = { name: 'p', url: `${repo.origin}/private/`, username: 'reader', password: 's3cret' };
    const repos = new HelmRepositories({ entries: [entry], ...noRetry });
    try {
      const got = await repos.pullUrl(`${repo.origin}/private/demo-1.0.0.tgz`);
      expect(got.archive.equals(archives.get('1.0.0')!)).toBe(true);
      expect(got.repository).toBe(`p (${repo.origin}/private/)`);
    } finally {
      await repos.close();
    }
  });
});

describe('repositories.yaml and --repo', () => {
  it('reads helm repositories.yaml from HELM_REPOSITORY_CONFIG, else XDG_CONFIG_HOME or ~/.config', async () => {
    expect(helmRepositoryConfigPath({ HELM_REPOSITORY_CONFIG: '/x/r.yaml' })).toBe('/x/r.yaml');
    expect(helmRepositoryConfigPath({ XDG_CONFIG_HOME: '/xdg', HOME: '/h' })).toBe('/xdg/helm/repositories.yaml');
    expect(helmRepositoryConfigPath({ HOME: '/h' })).toBe('/h/.config/helm/repositories.yaml');
    const file = join(work, 'repositories.yaml');
    await writeFile(
      file,
      [
        'apiVersion: ""',
        'generated: "0001-01-01T00:00:00Z"',
        'repositories:',
        '- caFile: /etc/ca.pem',
        '  certFile: ""',
        '  insecure_skip_tls_verify: true',
        '  keyFile: ""',
        '  name: demo',
        '  pass_credentials_all: false',
        '  password: pw',
        `  url: ${repo.origin}/repo`,
        '  username: me',
        '- name: shadowed',
        '  url: https://old.example/charts',
        '',
      ].join('\n'),
    );
    const entries = await configuredRepositories(['shadowed=https://new.example/c'], { HELM_REPOSITORY_CONFIG: file });
    expect(entries).toEqual([
      { name: 'shadowed', url: 'https://new.example/c' },
      { name: 'demo', url: `${repo.origin}/repo`, username: 'me', password: 'pw', caFile: '/etc/ca.pem', insecure: true },
    ]);
    // helm's default file need not exist; a named one must
    expect(await configuredRepositories([], { HOME: join(work, 'nohome') })).toEqual([]);
    await expect(configuredRepositories([], { HELM_REPOSITORY_CONFIG: join(work, 'none.yaml') })).rejects.toThrow(
      `cannot read ${join(work, 'none.yaml')}: no such file`,
    );
    expect(() => parseRepositoriesYaml('repositories:\n- name: x\n  url: https://x\n  certFile: /c.pem\n', 'r.yaml')).toThrow(
      'r.yaml: repository x uses a client certificate (certFile/keyFile), which ferry does not support',
    );
    expect(() => parseRepositoriesYaml('repositories:\n- name: x\n', 'r.yaml')).toThrow('r.yaml: repositories[0] needs a name and a url');
  });

  it('takes credentials out of a --repo URL and refuses a malformed flag without echoing secrets', () => {
    expect(parseRepoFlag('p=https://reader:s%40cret@charts.example/p')).toEqual({
      name: 'p',
      url: 'https://charts.example/p',
      username: 'reader',
      password: 's@cret',
    });
    expect(() => parseRepoFlag('https://u:pw@charts.example')).toThrow('--repo "https://…@charts.example": use --repo NAME=URL');
    expect(() => parseRepoFlag('p=oci://r.example/c')).toThrow('--repo p: oci:// is not a Helm repository scheme (http:// or https://)');
    expect(parseRepoChartName('openebs/openebs@4.1.x')).toEqual({ repo: 'openebs', chart: 'openebs', version: '4.1.x' });
    expect(parseRepoChartName('./charts/x')).toBeUndefined();
  });

  it('loadChart reads NAME/CHART[@VERSION] from a configured repository, a spec repo URL, and a chart URL', async () => {
    const repos = new HelmRepositories({ repoFlags: [`demo=${repo.origin}/repo`], env: { HOME: join(work, 'nohome') }, ...noRetry });
    try {
      const chart = await loadChart('demo/demo@~4.1', { repositories: repos });
      expect([chart.name, chart.version, chart.origin]).toEqual(['demo', '4.1.7', 'demo/demo']);
      expect(chart.repo).toEqual({ url: `${repo.origin}/repo/charts/demo-4.1.7.tgz`, repository: `demo (${repo.origin}/repo)` });
      expect(chart.archive!.equals(archives.get('4.1.7')!)).toBe(true);
      expect((await loadChart('demo/demo', { repositories: repos, version: '1.0.0' })).repo?.provenance?.length).toBeGreaterThan(0);
      expect((await loadChart('demo', { repositories: repos, repo: `${repo.origin}/repo`, version: '4.1.3' })).version).toBe('4.1.3');
      expect((await loadChart(`${other.origin}/abs/demo-4.2.0.tgz`, { repositories: repos })).version).toBe('4.2.0');
      await expect(loadChart('nowhere/demo', { repositories: repos })).rejects.toThrow(
        'chart nowhere/demo not found: give a chart directory, a .tgz file, oci://REGISTRY/REPOSITORY[:VERSION], REPO/CHART[@VERSION] or a chart URL; no repository "nowhere" is configured (--repo nowhere=URL, or helm repo add)',
      );
      await expect(loadChart('demo/demo@1.0.0', { repositories: repos, version: '1.0.0' })).rejects.toThrow(
        'chart demo/demo@1.0.0: give the version once (@VERSION or --chart-version)',
      );
    } finally {
      await repos.close();
    }
  });
});
