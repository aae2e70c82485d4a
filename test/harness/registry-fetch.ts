// A raw HTTP client for asserting what a test registry stores, independent of
// the client under test: it answers Basic and Bearer challenges itself.
import { fetch, type Response } from 'undici';
import { dispatcherFor } from './net.js';
import type { TestRegistry } from './registry.js';

/** What registryFetch needs of a registry: a real one (TestRegistry) or the in-process one (MemoryRegistry). */
export type RegistryEndpoint = Pick<TestRegistry, 'url' | 'users' | 'caFile'>;

export interface Credentials {
  user: string;
  password: string;
}

export interface RegistryFetchInit {
  method?: string;
  headers?: Record<string, string>;
  /** Replayable, because a 401 challenge makes the request go out twice. */
  body?: string | Uint8Array;
  /** Default: alice (or the registry's first user); null: anonymous. */
  creds?: Credentials | null;
  redirect?: 'follow' | 'manual' | 'error';
}

export function defaultCredentials(reg: RegistryEndpoint): Credentials | undefined {
  const user = 'alice' in reg.users ? 'alice' : Object.keys(reg.users)[0];
  const password = user === undefined ? undefined : reg.users[user];
  return user === undefined || password === undefined ? undefined : { user, password };
}

/** Fetches `path` (e.g. "/v2/team/app/blobs/sha256:...") from the registry, authenticating if challenged. */
export async function registryFetch(reg: RegistryEndpoint, path: string, init: RegistryFetchInit = {}): Promise<Response> {
  const creds = init.creds === undefined ? defaultCredentials(reg) : init.creds;
  const dispatcher = dispatcherFor(reg.caFile);
  const send = (authorization?: string) =>
    fetch(reg.url + path, {
      method: init.method ?? 'GET',
      headers: { ...init.headers, ...(authorization ? { authorization } : {}) },
      body: init.body,
      redirect: init.redirect ?? 'follow',
      dispatcher,
    });

  const first = await send();
  if (first.status !== 401 || !creds) return first;
  const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
  await first.body?.cancel();
  if (challenge?.scheme === 'basic') return send(basic(creds));
  if (challenge?.scheme === 'bearer') {
    return send(`Bearer ${await fetchToken(challenge.params, creds, reg.caFile)}`);
  }
  throw new Error(`unsupported challenge from ${reg.url}${path}: ${first.headers.get('www-authenticate')}`);
}

function basic({ user, password }: Credentials): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one challenge such as `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match?.[1]) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) {
    if (key !== undefined && value !== undefined) params[key.toLowerCase()] = value;
  }
  return { scheme: match[1].toLowerCase(), params };
}

async function fetchToken(params: Record<string, string>, creds: Credentials, caFile: string | undefined): Promise<string> {
  if (!params.realm) throw new Error('Bearer challenge without realm');
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) {
    for (const scope of params.scope.split(' ')) url.searchParams.append('scope', scope);
  }
  const res = await fetch(url, {
    headers: { authorization: basic(creds) },
    dispatcher: dispatcherFor(caFile),
  });
  if (!res.ok) throw new Error(`token request ${url} failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error(`token response from ${url} has no token`);
  return token;
}
