// Start-up stays small: `ferry load`, `ferry verify` and `ferry pack` of images
// never load the template engine (@ferry/helm) or the bundler's chart code; `ferry images` does. A module
// loader hook records every workspace module a ferry process loads.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const MAIN = join(ROOT, 'packages', 'cli', 'dist', 'main.js');
let dir: string;
let register: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-startup-'));
  const hooks = join(dir, 'hooks.mjs');
  await writeFile(
    hooks,
    `export async function load(url, context, next) {\n  if (url.startsWith(${JSON.stringify(pathToFileURL(join(ROOT, 'packages')).href)})) process.stderr.write('LOADED ' + url + '\\n');\n  return next(url, context);\n}\n`,
  );
  register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The workspace modules (paths under packages/) a ferry run loads. */
function modulesLoaded(args: string[]): Promise<string[]> {
  return new Promise((done) => {
    execFile(process.execPath, ['--import', register, MAIN, ...args], { env: { ...process.env, NO_COLOR: '1' } }, (_err, _out, stderr) => {
      done(
        stderr
          .split('\n')
          .filter((l) => l.startsWith('LOADED '))
          .map((l) => fileURLToPath(l.slice('LOADED '.length)).slice(join(ROOT, 'packages').length + 1)),
      );
    });
  });
}

const chartCode = (m: string) => m.startsWith('helm/') || m.startsWith('bundler/dist/charts/');

describe('start-up', () => {
  it('load, verify, and pack without --chart load no chart code', async () => {
    const missing = join(dir, 'missing.tar');
    for (const args of [
      ['verify', missing],
      ['load', missing, '--to', '127.0.0.1:1'],
      ['pack', '-f', join(dir, 'missing.txt'), '--namespace', 'prod', '-o', missing],
    ]) {
      const loaded = await modulesLoaded(args);
      expect(loaded).toContain('bundler/dist/index.js');
      expect(loaded.filter(chartCode)).toEqual([]);
    }
  });

  it('images loads the template engine', async () => {
    const loaded = await modulesLoaded(['images', '--chart', join(ROOT, 'packages', 'bundler', 'test', 'fixtures', 'charts', 'cache-src')]);
    expect(loaded).toContain('helm/dist/index.js');
    expect(loaded).toContain('bundler/dist/charts/index.js');
  });
});
