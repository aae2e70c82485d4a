/**
 * Registry authentication: parses WWW-Authenticate challenges, answers Basic
 * challenges with credentials and Bearer challenges with tokens from the realm
 * (Docker token spec), caching tokens per scope set until they expire.
 */
import { MAX_SMALL_BODY_BYTES } from './bounded-read.js';
import type { Credential } from './credentials.js';
import { FerryError } from './errors.js';
import { parseBoundedJson } from './json.js';
import { registryApiHost } from './reference.js';
import { abortable } from './retry-policy.js';
import type { Transport, TransportResponse } from './transport.js';

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="a b"` (quoted or bare values). */
export function parseChallenge(value: string | undefined): Challenge | undefined {
  if (!value) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme, params };
}

/** `repository:team/app:pull,push` atoms, the unit a token grants. */
export function repositoryScope(repository: string, actions: Array<'pull' | 'push' | 'delete' | '*'>): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/** Splits scopes into atoms (`repository:x:pull`) so grants can be compared. */
function atoms(scopes: string[]): Set<string> {
  const out = new Set<string>();
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    if (i < 0) continue;
    for (const action of s.slice(i + 1).split(',')) out.add(`${s.slice(0, i)}:${action}`);
  }
  return out;
}

/** Merges scopes per resource: `repository:a:pull` + `repository:a:push` -> `repository:a:pull,push`. */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const atom of atoms(scopes)) {
    const i = atom.lastIndexOf(':');
    const resource = atom.slice(0, i);
    const set = byResource.get(resource) ?? new Set<string>();
    set.add(atom.slice(i + 1));
    byResource.set(resource, set);
  }
  return [...byResource].map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`).sort();
}

interface CachedToken {
  atoms: Set<string>;
  token: string;
  expiresAt: number;
}

/** Tokens are refreshed this long before their stated expiry. */
const EXPIRY_MARGIN_MS = 10_000;

/**
 * The auth state of one registry host. Tracks the scheme the registry asked for,
 * so later requests can send credentials without a 401 round trip.
 */
export class RegistryAuth {
  private challenge: Challenge | undefined;
  private tokens: CachedToken[] = [];
  private pending = new Map<string, Promise<CachedToken>>();

  constructor(
    readonly registry: string,
    private readonly transport: Transport,
    private readonly credential: () => Promise<Credential | undefined>,
  ) {}

  /** Learns the registry's challenge from a 401 response header. Returns false if unusable. */
  learn(wwwAuthenticate: string | undefined): boolean {
    const c = parseChallenge(wwwAuthenticate);
    if (!c) return false;
    this.challenge = c;
    return true;
  }

  /** Drops cached tokens covering these scopes (after a 401 that said the token is no good). */
  invalidate(scopes: string[]): void {
    const want = atoms(scopes);
    this.tokens = this.tokens.filter((t) => ![...want].every((a) => t.atoms.has(a)));
  }

  /** The Authorization header for a request needing `scopes`, or undefined for anonymous. */
  async authorization(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const cred = await this.credential();
      if (!cred || !('password' in cred)) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    }
    const token = await this.token(scopes, signal);
    return token ? `Bearer ${token}` : undefined;
  }

  private async token(scopes: string[], signal: AbortSignal | undefined): Promise<string | undefined> {
    const want = atoms(scopes);
    const now = Date.now();
    this.tokens = this.tokens.filter((t) => t.expiresAt > now);
    const hit = this.tokens.find((t) => [...want].every((a) => t.atoms.has(a)));
    if (hit) return hit.token;
    const merged = mergeScopes(scopes);
    const key = merged.join(' ');
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(merged).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    // A token fetch is shared by every request that waits for it: a cancelled caller
    // stops waiting, the fetch goes on for the others (it is bounded by the transport).
    const t = await abortable(p, signal);
    if (t.token && !this.tokens.includes(t)) this.tokens.push(t);
    return t.token || undefined;
  }

  /**
   * Docker sends credentials to whatever realm a registry names, silently. The realm is
   * the registry's to choose, but the user should know when the password goes to
   * another host, or in clear while the registry itself speaks TLS.
   */
  private async warnAboutRealm(realm: URL): Promise<void> {
    const base = new URL(await this.transport.baseUrl(registryApiHost(this.registry)));
    if (realm.protocol === 'http:' && base.protocol === 'https:') {
      this.transport.warnOnce(`${this.registry} sends your credentials over plain HTTP to its token server ${realm.origin}, although the registry uses HTTPS`);
    } else if (realm.hostname.toLowerCase() !== base.hostname.toLowerCase()) {
      this.transport.warnOnce(`${this.registry} sends your credentials to its token server on another host, ${realm.host}`);
    }
  }

  private async fetchToken(scopes: string[]): Promise<CachedToken> {
    const params = this.challenge!.params;
    const realm = params.realm;
    if (!realm) throw new FerryError('auth', `${this.registry} asked for a bearer token but named no realm`, { registry: this.registry });
    const cred = await this.credential();
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new FerryError('auth', `${this.registry} named a token realm that is not a URL`, { registry: this.registry });
    }
    if (cred) await this.warnAboutRealm(url);
    let res: TransportResponse;
    if (cred && 'identityToken' in cred) {
      // OAuth2 refresh-token grant, as docker does with identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'ferry' });
      if (params.service) form.set('service', params.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.transport.request({
        method: 'POST',
        url: url.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        maxBodyBytes: MAX_SMALL_BODY_BYTES,
      });
    } else {
      if (params.service) url.searchParams.set('service', params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred) {
        url.searchParams.set('account', cred.username);
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
      }
      res = await this.transport.request({ method: 'GET', url: url.toString(), headers, maxBodyBytes: MAX_SMALL_BODY_BYTES });
    }
    if (res.status === 401 || res.status === 403) {
      throw new FerryError(
        'auth',
        `${res.status} UNAUTHORIZED logging in to ${this.registry}: credentials were rejected; run \`ferry login ${this.registry}\``,
        { status: res.status, codes: ['UNAUTHORIZED'], registry: this.registry, operation: 'authenticating' },
      );
    }
    if (res.status !== 200) {
      throw new FerryError('auth', `token server of ${this.registry} answered HTTP ${res.status}`, {
        status: res.status,
        registry: this.registry,
        operation: 'authenticating',
      });
    }
    if (!res.bytes) {
      throw new FerryError('auth', `token server of ${this.registry} sent a response larger than 1 MiB; refusing it`, { registry: this.registry });
    }
    const notToken = (what: string) => new FerryError('auth', `token server of ${this.registry} sent a response that is ${what}`, { registry: this.registry });
    const parsed = parseBoundedJson(
      res.bytes,
      () => notToken('not JSON'),
      () => notToken('nested too deep to be a token'),
    );
    if (typeof parsed !== 'object' || parsed === null) throw notToken('not a JSON object');
    const body = parsed as { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    // The spec's default lifetime is 60 s when expires_in is absent.
    const lifetime = Math.max(60, typeof body.expires_in === 'number' ? body.expires_in : 60) * 1000;
    const issued = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
    const start = Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now());
    return { atoms: atoms(scopes), token, expiresAt: start + lifetime - EXPIRY_MARGIN_MS };
  }
}

/** The `error="insufficient_scope"` a registry sends when a token lacks a right. */
export function isInsufficientScope(wwwAuthenticate: string | undefined): boolean {
  return parseChallenge(wwwAuthenticate)?.params.error === 'insufficient_scope';
}
