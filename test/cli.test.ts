// The `ferry` command line as a user meets it: exit codes and one-line errors
// for bad input and unreachable registries, and `ferry login` against real
// htpasswd and token-auth registries.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { freePort } from './harness/net.js';
import { copyResult, expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry } from './helpers/ferry.js';

let home: FerryHome;
beforeAll(async () => {
  home = await makeFerryHome();
});
afterAll(() => home?.remove());

const ferry = (...args: string[]) => runFerry(args, { home });

describe('bad input exits 2 with one line', () => {
  test('an unparsable reference names the bad part', async () => {
    const line = expectErrorLine(await ferry('copy', 'Team/App:1', '127.0.0.1:1/x:1'), 2);
    expect(line).toBe('ferry: invalid reference "Team/App:1": repository name must be lowercase ("App")');
  });

  test('a bad destination reference is caught before any traffic', async () => {
    const line = expectErrorLine(await ferry('copy', '127.0.0.1:1/x:1', '127.0.0.1:1/y:bad tag'), 2);
    expect(line).toMatch(/^ferry: invalid reference "127\.0\.0\.1:1\/y:bad tag": /);
  });

  test('an unknown option', async () => {
    expect(expectErrorLine(await ferry('copy', '--bogus', 'a', 'b'), 2)).toBe("ferry: unknown option '--bogus'");
  });

  test('a missing argument and an unknown command', async () => {
    expect(expectErrorLine(await ferry('copy', 'only-one'), 2)).toBe("ferry: missing required argument 'dst'");
    expect(expectErrorLine(await ferry('frobnicate'), 2)).toBe("ferry: unknown command 'frobnicate'");
  });

  test('an unknown platform syntax', async () => {
    const line = expectErrorLine(await ferry('copy', '--platform', 'linux/', '127.0.0.1:1/x:1', '127.0.0.1:1/y:1'), 2);
    expect(line).toContain('linux/');
  });

  test('login without --password-stdin', async () => {
    const line = expectErrorLine(await ferry('login', '127.0.0.1:1', '-u', 'alice'), 2);
    expect(line).toContain('--password-stdin');
  });
});

describe('unreachable registries exit 1 with one line', () => {
  test('an unknown host', async () => {
    const line = expectErrorLine(await ferry('copy', 'nohost.invalid/x:1', '127.0.0.1:1/y:1'), 1);
    expect(line).toBe('ferry: cannot resolve host nohost.invalid');
  });

  test('a closed local port: retried for the budget with one line saying so, then one error line, and a stack only with --debug', async () => {
    const port = await freePort();
    const args = ['copy', `127.0.0.1:${port}/x:1`, `127.0.0.1:${port}/y:1`];
    const env = { FERRY_RETRY_BUDGET: '2' };
    // --quiet leaves out the retry log lines, not the error.
    const [quiet, debug] = await Promise.all([runFerry(['-q', ...args], { home, env }), runFerry(['--debug', ...args], { home, env })]);
    expect(expectErrorLine(quiet, 1)).toBe(`ferry: connection refused by 127.0.0.1:${port}`);
    expect(quiet.ms).toBeGreaterThan(1900);

    expect(debug.code).toBe(1);
    const lines = debug.stderr.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('ferry: '))).toEqual([`ferry: connection refused by 127.0.0.1:${port}`]);
    // One line for the outage, not one per attempt.
    expect(lines.filter((l) => l.includes('unreachable'))).toEqual([
      `registry 127.0.0.1:${port} unreachable (connection refused by 127.0.0.1:${port}), retrying for up to 2 s`,
    ]);
    expect(lines.filter((l) => l.startsWith('retrying '))).toEqual([]);
    expect(debug.stderr).toMatch(/^\s+at /m);
  });

  test('FERRY_RETRY_BUDGET must be a number of seconds', async () => {
    const r = await runFerry(['copy', '127.0.0.1:1/x:1', '127.0.0.1:1/y:1'], { home, env: { FERRY_RETRY_BUDGET: 'soon' } });
    expect(expectErrorLine(r, 2)).toBe('ferry: FERRY_RETRY_BUDGET must be a number of seconds from 0 to 86400, not "soon"');
  });
});

describe('ferry login', () => {
  let htpasswd: TestRegistry;
  let token: TestRegistry;
  let image: SeededImage;
  beforeAll(async () => {
    [htpasswd, token] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' })]);
    image = await seedImage(htpasswd, 'login/app:1', { seed: 'login', layerSize: 4096 });
  });
  afterAll(async () => {
    await Promise.all([htpasswd?.stop(), token?.stop()]);
  });

  const login = (h: FerryHome, reg: TestRegistry, password: string) =>
    runFerry(['login', reg.host, '-u', 'alice', '--password-stdin'], { home: h, stdin: `${password}\n` });

  test.each(['htpasswd', 'token'] as const)('a wrong password against the %s registry fails and stores nothing', async (which) => {
    const reg = which === 'htpasswd' ? htpasswd : token;
    const fresh = await makeFerryHome();
    try {
      const wrong = 'N0t-Alices-Secret-93f2';
      const res = await login(fresh, reg, wrong);
      const line = expectErrorLine(res, 1);
      expect(line).toMatch(new RegExp(`^ferry: 401 UNAUTHORIZED logging in to ${reg.host}: credentials were rejected`));
      expect(res.stderr).not.toContain(wrong);
      expect(existsSync(fresh.configFile)).toBe(false);
    } finally {
      await fresh.remove();
    }
  });

  test('stores docker-format credentials, and a copy then works with only those logins', async () => {
    for (const reg of [htpasswd, token]) {
      const res = await login(home, reg, 'alice-secret');
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toBe(`Login Succeeded (${reg.host})\n`);
      expect(res.stderr).not.toContain('alice-secret');
    }
    const config = JSON.parse(await readFile(home.configFile, 'utf8')) as { auths: Record<string, { auth: string }> };
    const auth = Buffer.from('alice:alice-secret').toString('base64');
    expect(config).toEqual({ auths: { [htpasswd.host]: { auth }, [token.host]: { auth } } });

    const copy = await ferry('copy', '--json', `${htpasswd.host}/login/app:1`, `${token.host}/login/app:1`);
    expect(copyResult(copy)).toMatchObject({ digest: image.digest, blobs: { uploaded: 6 } });
    await expectImageIn(token, 'login/app:1', image);
  });

  test('--json reports the login', async () => {
    const res = await runFerry(['--json', 'login', token.host, '-u', 'alice', '--password-stdin'], { home, stdin: 'alice-secret' });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ registry: token.host, username: 'alice', config: home.configFile });
  });
});
