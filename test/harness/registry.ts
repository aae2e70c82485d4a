// Real CNCF Distribution 2.8 registries (Debian's docker-registry) on
// loopback, one temp dir each, in the auth and TLS variants the tests need.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashSync } from 'bcryptjs';
import { request } from 'undici';
import { makeServerTls, makeSigningCert } from './certs.js';
import { dispatcherFor, freePort, LOOPBACK } from './net.js';
import { makeTempDir, removeTempDir, stopChild, trackChild } from './process.js';
import { type Acl, DEFAULT_USERS, defaultAcl, startTokenServer, type TestTokenServer } from './token-server.js';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  tls?: boolean;
  /** Users for htpasswd or the token server; default alice and bob. */
  users?: Record<string, string>;
  /** Token auth only; default {@link defaultAcl}. */
  acl?: Acl;
  /** Where the registry's temp dir (config, storage) goes; default the OS temp dir. */
  parentDir?: string;
  /** The in-memory blob descriptor cache of the registry:2 image's default config (off by default). */
  blobDescriptorCache?: boolean;
}

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT", or https when TLS is on. */
  url: string;
  auth: RegistryAuth;
  /** PEM of the CA that signed the TLS certificate (TLS only). */
  caFile?: string;
  /** A directory holding that CA as ca.crt, for tools that take a cert dir (skopeo). */
  certDir?: string;
  storageDir: string;
  /** Process id of the registry. */
  pid: number;
  users: Record<string, string>;
  tokenServer?: TestTokenServer;
  stop(): Promise<void>;
}

export const TOKEN_SERVICE = 'ferry-test-registry';
export const TOKEN_ISSUER = 'ferry-test-issuer';

const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const users = { ...(opts.users ?? DEFAULT_USERS) };
  const dir = await makeTempDir('ferry-registry-', opts.parentDir);
  let tokenServer: TestTokenServer | undefined;
  try {
    const storageDir = join(dir, 'storage');
    await mkdir(storageDir);
    const tls = opts.tls ? await makeServerTls(join(dir, 'tls')) : undefined;
    let certDir: string | undefined;
    if (tls) {
      certDir = join(dir, 'cert-dir');
      await mkdir(certDir);
      await copyFile(tls.caFile, join(certDir, 'ca.crt'));
    }

    let authConfig: object | undefined;
    if (auth === 'htpasswd') {
      authConfig = { htpasswd: { realm: 'ferry-test', path: await writeHtpasswd(dir, users) } };
    } else if (auth === 'token') {
      const signer = await makeSigningCert(join(dir, 'token'));
      tokenServer = await startTokenServer({
        users,
        acl: opts.acl ?? defaultAcl,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        key: signer.key,
        cert: signer.cert,
      });
      authConfig = {
        token: {
          realm: `${tokenServer.url}/token`,
          service: TOKEN_SERVICE,
          issuer: TOKEN_ISSUER,
          rootcertbundle: signer.certFile,
        },
      };
    }

    const makeConfig = (port: number) => ({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        ...(opts.blobDescriptorCache ? { cache: { blobdescriptor: 'inmemory' } } : {}),
        delete: { enabled: true },
      },
      http: {
        addr: `${LOOPBACK}:${port}`,
        // A fixed secret keeps the registry from warning about a random one.
        secret: randomBytes(16).toString('hex'),
        ...(tls ? { tls: { certificate: tls.certFile, key: tls.keyFile } } : {}),
      },
      ...(authConfig ? { auth: authConfig } : {}),
    });
    const scheme = tls ? 'https' : 'http';
    const { child, host } = await launch(dir, makeConfig, scheme, tls?.caFile);

    return {
      host,
      url: `${scheme}://${host}`,
      auth,
      caFile: tls?.caFile,
      certDir,
      storageDir,
      pid: child.pid!,
      users,
      tokenServer,
      async stop() {
        await stopChild(child);
        await tokenServer?.stop();
        await removeTempDir(dir);
      },
    };
  } catch (error) {
    await tokenServer?.stop();
    await removeTempDir(dir);
    throw error;
  }
}

/** Registry 2.8 accepts only bcrypt entries; cost 5 keeps every request cheap. */
async function writeHtpasswd(dir: string, users: Record<string, string>): Promise<string> {
  const file = join(dir, 'htpasswd');
  const lines = Object.entries(users).map(([user, password]) => `${user}:${hashSync(password, 5)}`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * Starts the registry on a port that was free a moment ago, retrying with a
 * new port when another process grabbed it in between.
 */
async function launch(
  dir: string,
  makeConfig: (port: number) => object,
  scheme: string,
  caFile: string | undefined,
): Promise<{ child: ChildProcess; host: string }> {
  const configFile = join(dir, 'config.yml');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    // YAML is a superset of JSON, so JSON sidesteps YAML quoting rules.
    await writeFile(configFile, JSON.stringify(makeConfig(port), null, 2));
    const child = spawn('docker-registry', ['serve', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: registryEnv(),
    });
    trackChild(child);
    const output = captureTail(child);
    const host = `${LOOPBACK}:${port}`;
    try {
      await waitReady(`${scheme}://${host}/v2/`, child, caFile);
      return { child, host };
    } catch (error) {
      await stopChild(child);
      const log = output();
      if (attempt < PORT_ATTEMPTS && /address already in use/.test(log)) continue;
      throw new Error(`docker-registry did not start: ${String(error)}\n${log}`, { cause: error });
    }
  }
}

/** REGISTRY_* variables override the config file, so none may leak in from the caller. */
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
}

/** Keeps the last 16 KiB of the registry's output for error messages. */
function captureTail(child: ChildProcess): () => string {
  let tail = '';
  const append = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-16 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => tail;
}

/** Polls until GET /v2/ answers 200 (no auth) or 401 (auth on). */
async function waitReady(url: string, child: ChildProcess, caFile: string | undefined): Promise<void> {
  const dispatcher = dispatcherFor(caFile);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    }
    try {
      const res = await request(url, { dispatcher });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${READY_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}
