import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Credential,
  CredentialStore,
  DOCKER_HUB_AUTH_KEY,
  dockerConfigPath,
  encodeBasicAuth,
  parseBasicAuth,
  registryOfAuthKey,
} from '../src/credentials.js';
import { FerryError } from '../src/errors.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Answers get for a few registries, records every call, and appends every store input to stores.log. */
const FAKE_HELPER = `#!/bin/sh
action="$1"
input=$(cat)
case "$action" in
  get)
    echo "get $input" >> "$FAKE_HELPER_DIR/calls.log"
    case "$input" in
      ghcr.io) printf '{"ServerURL":"ghcr.io","Username":"alice","Secret":"helper-secret"}\\n' ;;
      token.example.com) printf '{"ServerURL":"token.example.com","Username":"<token>","Secret":"id-token-123"}\\n' ;;
      https://index.docker.io/v1/) printf '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hub-secret"}\\n' ;;
      garbage.example.com) echo 'this is not json' ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  store)
    echo "store" >> "$FAKE_HELPER_DIR/calls.log"
    printf '%s\\n' "$input" >> "$FAKE_HELPER_DIR/stores.log" ;;
  *) echo "unknown action" >&2; exit 2 ;;
esac
`;

/** Fails every request; on store it echoes its input (which holds the secret) to stderr. */
const BROKEN_HELPER = `#!/bin/sh
input=$(cat)
if [ "$1" = store ]; then echo "cannot save $input" >&2; exit 1; fi
echo "error: keychain is locked" >&2
exit 3
`;

let tmp: string;
let binDir: string;
let configDir: string;
let configPath: string;
let env: NodeJS.ProcessEnv;

async function writeConfig(data: unknown): Promise<void> {
  await fs.mkdir(configDir, { recursive: true });
  await fs.writeFile(configPath, typeof data === 'string' ? data : JSON.stringify(data, null, 2));
}

async function readConfig(): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(configPath, 'utf8')) as Record<string, unknown>;
}

async function helperLog(name: 'calls.log' | 'stores.log'): Promise<string[]> {
  try {
    return (await fs.readFile(path.join(tmp, name), 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

function store(extra: Partial<ConstructorParameters<typeof CredentialStore>[0]> = {}): CredentialStore {
  return new CredentialStore({ configPath, env, ...extra });
}

async function caught(p: Promise<unknown>): Promise<FerryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    return e as FerryError;
  }
  throw new Error('expected a FerryError');
}

beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-creds-'));
  binDir = path.join(tmp, 'bin');
  configDir = path.join(tmp, 'docker');
  configPath = path.join(configDir, 'config.json');
  await fs.mkdir(binDir);
  await fs.writeFile(path.join(binDir, 'docker-credential-fake'), FAKE_HELPER, { mode: 0o755 });
  await fs.writeFile(path.join(binDir, 'docker-credential-broken'), BROKEN_HELPER, { mode: 0o755 });
  env = { PATH: `${binDir}${path.delimiter}${process.env.PATH ?? '/usr/bin:/bin'}`, FAKE_HELPER_DIR: tmp };
});

afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('dockerConfigPath', () => {
  it('uses $DOCKER_CONFIG/config.json when set', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/etc/dock' })).toBe(path.resolve('/etc/dock', 'config.json'));
  });
  it('defaults to ~/.docker/config.json', () => {
    expect(dockerConfigPath({})).toBe(path.join(os.homedir(), '.docker', 'config.json'));
    expect(dockerConfigPath({ DOCKER_CONFIG: '' })).toBe(path.join(os.homedir(), '.docker', 'config.json'));
  });
  it('is what CredentialStore reads when no configPath is given', async () => {
    await writeConfig({ auths: { 'reg.example.com': { auth: b64('env:pw') } } });
    const s = new CredentialStore({ env: { ...env, DOCKER_CONFIG: configDir } });
    expect(s.configPath).toBe(configPath);
    expect(await s.get('reg.example.com')).toEqual({ username: 'env', password: 'pw' });
  });
});

describe('basic auth helpers', () => {
  it('round-trips and splits at the first colon', () => {
    expect(parseBasicAuth(encodeBasicAuth('bob', 'a:b:c'))).toEqual({ username: 'bob', password: 'a:b:c' });
    expect(parseBasicAuth(b64('bob:pw\0\0'))).toEqual({ username: 'bob', password: 'pw' });
  });
  it('rejects values that are not base64 of user:password, without quoting them', () => {
    for (const bad of ['%%%not-base64', b64('nocolon'), b64(':emptyuser')]) {
      expect(() => parseBasicAuth(bad)).toThrow(FerryError);
      try {
        parseBasicAuth(bad);
      } catch (e) {
        expect((e as Error).message).not.toContain(bad);
      }
    }
  });
  it('maps config keys to registries', () => {
    expect(registryOfAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryOfAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(registryOfAuthKey('https://Host.Example.com:5000/v2/')).toBe('host.example.com:5000');
    expect(registryOfAuthKey('http://localhost:5000')).toBe('localhost:5000');
    expect(registryOfAuthKey('ghcr.io')).toBe('ghcr.io');
  });
});

describe('CredentialStore.get from auths', () => {
  it('means no credentials when the config file does not exist', async () => {
    expect(await store().get('ghcr.io')).toBeUndefined();
    expect(await store({ configPath: path.join(tmp, 'nodir', 'x', 'config.json') }).get('ghcr.io')).toBeUndefined();
  });

  it('treats an empty file as an empty config, as docker does', async () => {
    await writeConfig('');
    expect(await store().get('ghcr.io')).toBeUndefined();
  });

  it('decodes the auth field', async () => {
    await writeConfig({ auths: { 'ghcr.io': { auth: b64('octo:pa:ss') } } });
    expect(await store().get('ghcr.io')).toEqual({ username: 'octo', password: 'pa:ss' });
    expect(await store().get('quay.io')).toBeUndefined();
  });

  it('reads username and password fields, and prefers auth over them', async () => {
    await writeConfig({
      auths: {
        'a.example.com': { username: 'u1', password: 'p1' },
        'b.example.com': { username: 'ignored', password: 'ignored', auth: b64('u2:p2') },
      },
    });
    const s = store();
    expect(await s.get('a.example.com')).toEqual({ username: 'u1', password: 'p1' });
    expect(await s.get('b.example.com')).toEqual({ username: 'u2', password: 'p2' });
  });

  it('returns identity tokens, with the username when there is one', async () => {
    await writeConfig({
      auths: {
        'acr.example.com': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh-1' },
        'tok.example.com': { identitytoken: 'refresh-2' },
      },
    });
    const s = store();
    expect(await s.get('acr.example.com')).toEqual({
      identityToken: 'refresh-1',
      username: '00000000-0000-0000-0000-000000000000',
    });
    expect(await s.get('tok.example.com')).toEqual({ identityToken: 'refresh-2' });
  });

  it('finds Docker Hub under every key form', async () => {
    const keys = [DOCKER_HUB_AUTH_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io'];
    for (const [i, key] of keys.entries()) {
      await writeConfig({ auths: { [key]: { auth: b64(`hub${i}:pw`) } } });
      expect(await store().get('docker.io'), key).toEqual({ username: `hub${i}`, password: 'pw' });
      expect(await store().get('index.docker.io'), key).toEqual({ username: `hub${i}`, password: 'pw' });
    }
  });

  it('prefers the historical Docker Hub key over the other forms', async () => {
    await writeConfig({
      auths: { 'docker.io': { auth: b64('second:pw') }, [DOCKER_HUB_AUTH_KEY]: { auth: b64('first:pw') } },
    });
    expect(await store().get('docker.io')).toEqual({ username: 'first', password: 'pw' });
  });

  it('matches https://, http:// and path forms of a host, the exact key first', async () => {
    await writeConfig({
      auths: {
        'https://ghcr.io': { auth: b64('https-form:pw') },
        'http://localhost:5000': { auth: b64('http-form:pw') },
        'https://legacy.example.com/v1/': { auth: b64('path-form:pw') },
        'https://both.example.com': { auth: b64('prefixed:pw') },
        'both.example.com': { auth: b64('exact:pw') },
      },
    });
    const s = store();
    expect(await s.get('ghcr.io')).toEqual({ username: 'https-form', password: 'pw' });
    expect(await s.get('localhost:5000')).toEqual({ username: 'http-form', password: 'pw' });
    expect(await s.get('legacy.example.com')).toEqual({ username: 'path-form', password: 'pw' });
    expect(await s.get('both.example.com')).toEqual({ username: 'exact', password: 'pw' });
    expect(await s.get('localhost')).toBeUndefined();
  });

  it('skips an empty entry (as left next to a credsStore) and tries the other key forms', async () => {
    await writeConfig({ auths: { 'ghcr.io': {}, 'https://ghcr.io': { auth: b64('u:p') } } });
    expect(await store().get('ghcr.io')).toEqual({ username: 'u', password: 'p' });
  });

  it('gives explicit credentials precedence', async () => {
    await writeConfig({ auths: { 'ghcr.io': { auth: b64('file:pw') } }, credsStore: 'fake' });
    const explicit = new Map<string, Credential>([['ghcr.io', { username: 'cli', password: 'given' }]]);
    expect(await store({ explicit }).get('ghcr.io')).toEqual({ username: 'cli', password: 'given' });
    expect(await helperLog('calls.log')).toEqual([]);
  });
});

describe('malformed config', () => {
  it('rejects invalid JSON as a usage error naming the file, not its content', async () => {
    await writeConfig('{\n  "auths": { "ghcr.io": { "auth": "c2VjcmV0LXZhbHVlOnB3" }\n');
    const e = await caught(store().get('ghcr.io'));
    expect(e.kind).toBe('usage');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(`cannot read docker config ${configPath}:`);
    expect(e.message).not.toContain('c2VjcmV0');
  });

  it('rejects fields of the wrong type, naming the field', async () => {
    await writeConfig({ auths: { 'ghcr.io': { auth: 42 } } });
    const e = await caught(store().get('ghcr.io'));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('auths["ghcr.io"].auth');

    await writeConfig({ credHelpers: ['fake'] });
    expect((await caught(store().get('ghcr.io'))).message).toContain('credHelpers');

    await writeConfig('[1, 2]');
    expect((await caught(store().get('ghcr.io'))).message).toContain('not a JSON object');
  });

  it('rejects an auth field that is not base64 of user:password, without quoting it', async () => {
    await writeConfig({ auths: { 'ghcr.io': { auth: b64('no-colon-secret') } } });
    const e = await caught(store().get('ghcr.io'));
    expect(e.kind).toBe('usage');
    expect(e.message).toContain('auths["ghcr.io"].auth');
    expect(e.message).not.toContain(b64('no-colon-secret'));
    expect(e.message).not.toContain('no-colon-secret');
  });
});

describe('credential helpers', () => {
  it('asks the credHelpers entry for its host, sending the host on stdin', async () => {
    await writeConfig({ credHelpers: { 'ghcr.io': 'fake' }, auths: { 'ghcr.io': { auth: b64('file:pw') } } });
    expect(await store().get('ghcr.io')).toEqual({ username: 'alice', password: 'helper-secret' });
    expect(await helperLog('calls.log')).toEqual(['get ghcr.io']);
  });

  it('maps Username <token> to an identity token', async () => {
    await writeConfig({ credHelpers: { 'token.example.com': 'fake' } });
    expect(await store().get('token.example.com')).toEqual({ identityToken: 'id-token-123' });
  });

  it('uses credsStore for every registry, with the historical key for Docker Hub', async () => {
    await writeConfig({ credsStore: 'fake', auths: { [DOCKER_HUB_AUTH_KEY]: {} } });
    const s = store();
    expect(await s.get('docker.io')).toEqual({ username: 'hubuser', password: 'hub-secret' });
    expect(await s.get('ghcr.io')).toEqual({ username: 'alice', password: 'helper-secret' });
    expect(await helperLog('calls.log')).toEqual([`get ${DOCKER_HUB_AUTH_KEY}`, 'get ghcr.io']);
  });

  it('prefers credHelpers over credsStore', async () => {
    await writeConfig({ credsStore: 'broken', credHelpers: { 'ghcr.io': 'fake' } });
    expect(await store().get('ghcr.io')).toEqual({ username: 'alice', password: 'helper-secret' });
  });

  it('treats "credentials not found" as none and falls back to auths', async () => {
    await writeConfig({ credsStore: 'fake', auths: { 'quay.io': { auth: b64('filed:pw') } } });
    const s = store();
    expect(await s.get('unknown.example.com')).toBeUndefined();
    expect(await s.get('quay.io')).toEqual({ username: 'filed', password: 'pw' });
    expect(await helperLog('calls.log')).toEqual(['get unknown.example.com', 'get quay.io']);
  });

  it('caches results per registry for the life of the store', async () => {
    await writeConfig({ credsStore: 'fake' });
    const s = store();
    const [a, b] = await Promise.all([s.get('ghcr.io'), s.get('ghcr.io')]);
    expect(a).toEqual(b);
    expect(await s.get('ghcr.io')).toEqual(a);
    expect(await s.get('missing.example.com')).toBeUndefined();
    expect(await s.get('missing.example.com')).toBeUndefined();
    expect(await helperLog('calls.log')).toEqual(['get ghcr.io', 'get missing.example.com']);
    // A new store asks again.
    await store().get('ghcr.io');
    expect((await helperLog('calls.log')).length).toBe(3);
  });

  it('reports a failing helper as an auth error naming helper and registry', async () => {
    await writeConfig({ credHelpers: { 'ghcr.io': 'broken' } });
    const e = await caught(store().get('ghcr.io'));
    expect(e.kind).toBe('auth');
    expect(e.registry).toBe('ghcr.io');
    expect(e.message).toContain('docker-credential-broken');
    expect(e.message).toContain('ghcr.io');
    expect(e.message).toContain('status 3');
    expect(e.message).toContain('keychain is locked');
  });

  it('reports a helper missing from PATH', async () => {
    await writeConfig({ credsStore: 'nonexistent' });
    const e = await caught(store().get('ghcr.io'));
    expect(e.kind).toBe('auth');
    expect(e.message).toContain('docker-credential-nonexistent');
    expect(e.message).toContain('PATH');
  });

  it('reports malformed helper output without quoting it', async () => {
    await writeConfig({ credsStore: 'fake' });
    const e = await caught(store().get('garbage.example.com'));
    expect(e.kind).toBe('auth');
    expect(e.message).toContain('malformed');
    expect(e.message).not.toContain('this is not json');
  });
});

describe('CredentialStore.store into the config file', () => {
  it('creates the directory (0700) and file (0600)', async () => {
    const s = store();
    await s.store('ghcr.io', { username: 'me', password: 's3cr3t' });
    expect(await readConfig()).toEqual({ auths: { 'ghcr.io': { auth: b64('me:s3cr3t') } } });
    if (process.platform !== 'win32') {
      expect((await fs.stat(configPath)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(configDir)).mode & 0o777).toBe(0o700);
    }
    expect(await s.get('ghcr.io')).toEqual({ username: 'me', password: 's3cr3t' });
    expect(await store().get('ghcr.io')).toEqual({ username: 'me', password: 's3cr3t' });
  });

  it('preserves every other field and entry, replaces the old one, and leaves no temp file', async () => {
    const original = {
      auths: { 'quay.io': { auth: b64('q:w'), email: 'x@example.com' }, 'ghcr.io': { auth: b64('old:old') } },
      HttpHeaders: { 'X-Meta': 'yes' },
      psFormat: 'table {{.ID}}',
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
      plugins: { foo: { bar: 'baz' } },
      currentContext: 'remote',
    };
    await writeConfig(original);
    await fs.chmod(configPath, 0o644);
    await store().store('ghcr.io', { username: 'new', password: 'pw' });
    expect(await readConfig()).toEqual({
      ...original,
      auths: { ...original.auths, 'ghcr.io': { auth: b64('new:pw') } },
    });
    if (process.platform !== 'win32') expect((await fs.stat(configPath)).mode & 0o777).toBe(0o600);
    expect(await fs.readdir(configDir)).toEqual(['config.json']);
  });

  it('stores Docker Hub under the historical key', async () => {
    await store().store('docker.io', { username: 'hub', password: 'pw' });
    expect(await readConfig()).toEqual({ auths: { [DOCKER_HUB_AUTH_KEY]: { auth: b64('hub:pw') } } });
    expect(await store().get('docker.io')).toEqual({ username: 'hub', password: 'pw' });
  });

  it('writes through a symlinked config to its target', async () => {
    if (process.platform === 'win32') return;
    const realDir = path.join(tmp, 'real');
    await fs.mkdir(realDir);
    await fs.writeFile(path.join(realDir, 'config.json'), JSON.stringify({ psFormat: 'x' }));
    await fs.mkdir(configDir);
    await fs.symlink(path.join(realDir, 'config.json'), configPath);
    await store().store('ghcr.io', { username: 'u', password: 'p' });
    expect((await fs.lstat(configPath)).isSymbolicLink()).toBe(true);
    expect(JSON.parse(await fs.readFile(path.join(realDir, 'config.json'), 'utf8'))).toEqual({
      psFormat: 'x',
      auths: { 'ghcr.io': { auth: b64('u:p') } },
    });
  });

  it('runs concurrent stores one after the other without losing either', async () => {
    const s = store();
    await Promise.all([s.store('a.example.com', { username: 'a', password: '1' }), s.store('b.example.com', { username: 'b', password: '2' })]);
    expect(Object.keys((await readConfig()).auths as object).sort()).toEqual(['a.example.com', 'b.example.com']);
  });

  it('refuses to write over a malformed config, and refuses usernames with a colon', async () => {
    await writeConfig('{ not json');
    expect((await caught(store().store('ghcr.io', { username: 'u', password: 'p' }))).kind).toBe('usage');
    expect(await fs.readFile(configPath, 'utf8')).toBe('{ not json');
    await fs.rm(configPath);
    const e = await caught(store().store('ghcr.io', { username: 'a:b', password: 'p' }));
    expect(e.kind).toBe('usage');
  });
});

describe('CredentialStore.store through a helper', () => {
  it('hands the credential to credsStore and keeps only an empty entry in the file', async () => {
    await writeConfig({ credsStore: 'fake', auths: { 'ghcr.io': { auth: b64('stale:plain') } }, psFormat: 'x' });
    const s = store();
    await s.store('ghcr.io', { username: 'me', password: 'helper-pw' });
    expect((await helperLog('stores.log')).map((l) => JSON.parse(l) as unknown)).toEqual([{ ServerURL: 'ghcr.io', Username: 'me', Secret: 'helper-pw' }]);
    const written = await fs.readFile(configPath, 'utf8');
    expect(written).not.toContain(b64('stale:plain'));
    expect(written).not.toContain('helper-pw');
    expect(JSON.parse(written)).toEqual({ credsStore: 'fake', auths: { 'ghcr.io': {} }, psFormat: 'x' });
    expect(await s.get('ghcr.io')).toEqual({ username: 'me', password: 'helper-pw' });
  });

  it('uses credHelpers for its host and the historical key for Docker Hub', async () => {
    await writeConfig({ credHelpers: { [DOCKER_HUB_AUTH_KEY]: 'fake' } });
    await store().store('docker.io', { username: 'hub', password: 'hub-pw' });
    expect((await helperLog('stores.log')).map((l) => JSON.parse(l) as unknown)).toEqual([
      { ServerURL: DOCKER_HUB_AUTH_KEY, Username: 'hub', Secret: 'hub-pw' },
    ]);
    expect(await readConfig()).toEqual({ credHelpers: { [DOCKER_HUB_AUTH_KEY]: 'fake' }, auths: { [DOCKER_HUB_AUTH_KEY]: {} } });
  });

  it('reports a failing helper without the secret', async () => {
    await writeConfig({ credsStore: 'broken' });
    const before = await fs.readFile(configPath, 'utf8');
    const e = await caught(store().store('ghcr.io', { username: 'me', password: 'do-not-leak-me' }));
    expect(e.kind).toBe('auth');
    expect(e.message).toContain('docker-credential-broken');
    expect(e.message).toContain('ghcr.io');
    expect(e.message).not.toContain('do-not-leak-me');
    expect(await fs.readFile(configPath, 'utf8')).toBe(before);
  });
});
