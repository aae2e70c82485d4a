// .helmignore as helm's pkg/ignore reads it (its rules_test.go table, ported),
// and the one chart-directory walk that applies it for both `ferry images` and
// `ferry pack --chart`.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FerryError } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartDirectoryFiles } from '../src/chart-dir.js';
import { loadChart } from '../src/chart-load.js';
import { helmIgnores, parseHelmignore } from '../src/helmignore.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-helmignore-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeTree(root: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

describe('.helmignore rules, as helm reads them', () => {
  // helm's pkg/ignore TestIgnore: pattern, path, whether the path is a directory
  // (helm stats a fixture tree for that), and whether it is ignored.
  const DIRS = new Set(['', '.', './', 'cargo', 'cargo/', 'mast/']);
  const table: Array<[string, string, boolean]> = [
    // globs
    ['helm.txt', 'helm.txt', true],
    ['helm.*', 'helm.txt', true],
    ['helm.*', 'rudder.txt', false],
    ['*.txt', 'tiller.txt', true],
    ['*.txt', 'cargo/a.txt', true],
    ['cargo/*.txt', 'cargo/a.txt', true],
    ['cargo/*.*', 'cargo/a.txt', true],
    ['cargo/*.txt', 'mast/a.txt', false],
    ['ru[c-e]?er.txt', 'rudder.txt', true],
    ['templates/.?*', 'templates/.dotfile', true],
    // "." is never ignored (helm issue 1776)
    ['.*', '.', false],
    ['.*', './', false],
    ['.*', '.joonix', true],
    ['.*', 'helm.txt', false],
    ['.*', '', false],
    // directories
    ['cargo/', 'cargo', true],
    ['cargo/', 'cargo/', true],
    ['cargo/', 'mast/', false],
    ['helm.txt/', 'helm.txt', false],
    // negation: a negated rule that does not match ignores
    ['!helm.txt', 'helm.txt', false],
    ['!helm.txt', 'tiller.txt', true],
    ['!*.txt', 'cargo', true],
    ['!cargo/', 'mast/', true],
    // anchored at the chart root
    ['/a.txt', 'a.txt', true],
    ['/a.txt', 'cargo/a.txt', false],
    ['/cargo/a.txt', 'cargo/a.txt', true],
  ];
  for (const [pattern, path, ignored] of table) {
    it(`${pattern} ${ignored ? 'ignores' : 'keeps'} "${path}"`, () => {
      expect(helmIgnores(parseHelmignore(pattern, 'c'), path, DIRS.has(path))).toBe(ignored);
    });
  }

  it('skips comments and blank lines, trims, and always adds templates/.?* last', () => {
    const rules = parseHelmignore('#ignore\n\n\t#ignore\nfoo\nbar/*\r\nbaz/bar/foo.txt\n\none/more\n', 'c');
    expect(rules.map((r) => r.raw)).toEqual(['foo', 'bar/*', 'baz/bar/foo.txt', 'one/more', 'templates/.?*']);
    expect(helmIgnores(rules, 'templates/.notes', false)).toBe(true);
    expect(helmIgnores(rules, 'templates/sub/.notes', false)).toBe(false);
  });

  it('refuses ** and patterns Go cannot compile, naming the line', () => {
    expect(() => parseHelmignore('ok\nfoo/**/bar\n', '/c')).toThrow(FerryError);
    expect(() => parseHelmignore('ok\nfoo/**/bar\n', '/c')).toThrow('/c/.helmignore:2: double-star (**) syntax is not supported');
    expect(() => parseHelmignore('[z-', '/c')).toThrow('/c/.helmignore:1: "[z-" is not a valid pattern');
    expect(() => parseHelmignore('[]a]', '/c')).toThrow('"[]a]" is not a valid pattern');
    expect(() => parseHelmignore('a\\', '/c')).toThrow('"a\\" is not a valid pattern');
  });

  it("reads character classes and escapes as Go's filepath.Match", () => {
    const one = (pattern: string, path: string) => helmIgnores(parseHelmignore(pattern, 'c'), path, false);
    expect(one('[^a-c]x', 'dx')).toBe(true);
    expect(one('[^a-c]x', 'bx')).toBe(false);
    expect(one('[\\]]', ']')).toBe(true);
    expect(one('\\*.txt', '*.txt')).toBe(true);
    expect(one('\\*.txt', 'a.txt')).toBe(false);
    expect(one('[z-a]', 'q')).toBe(false); // a reversed range matches nothing
    expect(one('a?c', 'a/c')).toBe(false); // ? and * never cross a /
  });
});

describe('the chart-directory walk', () => {
  it('applies the root .helmignore to every path, skips ignored directories whole, and sorts', async () => {
    const root = await writeTree(join(work, 'chart'), {
      'Chart.yaml': 'name: c\nversion: 1.0.0\n',
      '.helmignore': '# not these\n*.tmp\ndocs/\n/top.txt\ntemplates/ignored.yaml\n',
      'values.yaml': 'a: 1\n',
      'top.txt': 'x',
      'sub/top.txt': 'kept: not at the root',
      'docs/readme.md': 'x',
      'notes.tmp': 'x',
      'templates/ignored.yaml': 'kind: Ignored\n',
      'templates/kept.yaml': 'kind: Kept\n',
      'templates/.hidden': 'x',
      'charts/sub/Chart.yaml': 'name: sub\nversion: 0.1.0\n',
      'charts/sub/.helmignore': 'values.yaml\n', // a subchart's own .helmignore is a plain file, as in helm
      'charts/sub/values.yaml': 'b: 2\n',
      'charts/sub/cache.tmp': 'x',
      '.git/config': 'x', // nothing special: helm reads .git unless .helmignore says otherwise
    });
    const files = await chartDirectoryFiles(root);
    expect([...files.keys()]).toEqual([
      '.git/config',
      '.helmignore',
      'Chart.yaml',
      'charts/sub/.helmignore',
      'charts/sub/Chart.yaml',
      'charts/sub/values.yaml',
      'sub/top.txt',
      'templates/kept.yaml',
      'values.yaml',
    ]);
    const chart = await loadChart(root);
    expect(chart.templates.map((t) => t.path)).toEqual(['templates/kept.yaml']);
    expect([...chart.subcharts[0]!.files.keys()].sort()).toEqual(['.helmignore', 'Chart.yaml', 'values.yaml']);
  });

  it('follows symbolic links (never round a loop), and refuses broken links and irregular files unless ignored', async () => {
    const root = await writeTree(join(work, 'links'), { 'Chart.yaml': 'name: l\nversion: 1.0.0\n', 'shared/a.yaml': 'a\n' });
    await symlink(join(root, 'shared'), join(root, 'templates'));
    await symlink(root, join(root, 'shared', 'loop'));
    expect([...(await chartDirectoryFiles(root)).keys()]).toEqual(['Chart.yaml', 'shared/a.yaml', 'templates/a.yaml']);

    await symlink(join(root, 'nowhere'), join(root, 'broken'));
    await expect(chartDirectoryFiles(root)).rejects.toThrow(`${root}: broken is a broken symbolic link; helm cannot read it either`);
    await rm(join(root, 'broken'));

    execFileSync('mkfifo', [join(root, 'pipe')]);
    await expect(chartDirectoryFiles(root)).rejects.toThrow(
      `${root}: pipe is not a regular file (a device, socket or pipe); remove it or list it in .helmignore`,
    );
    await writeFile(join(root, '.helmignore'), 'pipe\n');
    expect([...(await chartDirectoryFiles(root)).keys()]).toEqual(['.helmignore', 'Chart.yaml', 'shared/a.yaml', 'templates/a.yaml']);
  });
});
