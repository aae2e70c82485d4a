// Auth of the in-process registry: Basic (any listed user may do anything, as
// an htpasswd registry:2) or Docker token auth with the token endpoint on the
// registry's own listener. Tokens are opaque: only this registry reads them.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { type Acl, DEFAULT_USERS, defaultAcl } from '../token-server.js';
import { RegistryError } from './errors.js';

export type MemoryAuth =
  | { type: 'basic'; users?: Record<string, string> }
  | {
      type: 'token';
      users?: Record<string, string>;
      /** Default {@link defaultAcl}: alice everything, bob pull, anonymous nothing. */
      acl?: Acl;
      /** Seconds a token lives; default 300. */
      lifetimeSeconds?: number;
      /** Identity (refresh) tokens accepted by the POST token endpoint, with the user each stands for. */
      identityTokens?: Record<string, string>;
    };

export const MEMORY_TOKEN_SERVICE = 'ferry-memory-registry';
const REALM = 'ferry-memory-registry';

/** One access a request needs: `repository:team/app:push`, `registry:catalog:*`. */
export interface Need {
  type: string;
  name: string;
  action: string;
}

export interface TokenGrant {
  user?: string;
  scopes: string[];
  /** `type:name:action` atoms granted. */
  granted: string[];
  status: number;
}

interface Issued {
  user?: string;
  atoms: Set<string>;
  expiresAt: number;
}

export class Authenticator {
  readonly users: Record<string, string>;
  readonly grants: TokenGrant[] = [];
  private readonly tokens = new Map<string, Issued>();

  constructor(
    readonly config: MemoryAuth | undefined,
    private readonly realmUrl: () => string,
  ) {
    this.users = { ...(config?.users ?? DEFAULT_USERS) };
  }

  /** Throws the 401 registry:2 answers when the request lacks a credential that covers `needs`. */
  check(headers: IncomingHttpHeaders, needs: Need[]): void {
    const config = this.config;
    if (!config) return;
    const authorization = headers.authorization ?? '';
    if (config.type === 'basic') {
      const creds = basicCredentials(authorization);
      if (!creds || this.users[creds.user] !== creds.password) {
        throw new RegistryError(401, 'UNAUTHORIZED', undefined, undefined, { 'www-authenticate': `Basic realm="${REALM}"` });
      }
      return;
    }
    const token = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    const issued = token === undefined ? undefined : this.tokens.get(token);
    const valid = issued !== undefined && issued.expiresAt > Date.now();
    const missing = needs.filter((n) => !issued?.atoms.has(`${n.type}:${n.name}:${n.action}`) && !issued?.atoms.has(`${n.type}:${n.name}:*`));
    if (valid && missing.length === 0) return;
    const scope = scopeParam(needs);
    const challenge = [`Bearer realm="${this.realmUrl()}"`, `service="${MEMORY_TOKEN_SERVICE}"`];
    if (scope) challenge.push(`scope="${scope}"`);
    if (valid) challenge.push('error="insufficient_scope"');
    throw new RegistryError(401, 'UNAUTHORIZED', undefined, needs, { 'www-authenticate': challenge.join(',') });
  }

  /** The token endpoint: GET with Basic credentials (or none), or the OAuth2 POST form. */
  issue(method: string, query: URLSearchParams, headers: IncomingHttpHeaders, body: Buffer): { status: number; json: object } {
    const config = this.config;
    if (config?.type !== 'token') return { status: 404, json: { errors: [{ code: 'UNSUPPORTED', message: 'this registry does not use token auth' }] } };
    let user: string | undefined;
    let scopes: string[];
    let refused = false;
    if (method === 'POST') {
      const form = new URLSearchParams(body.toString('utf8'));
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (form.get('grant_type') === 'refresh_token') {
        user = config.identityTokens?.[form.get('refresh_token') ?? ''];
        refused = user === undefined;
      } else if (form.get('grant_type') === 'password') {
        user = form.get('username') ?? undefined;
        refused = user === undefined || this.users[user] !== form.get('password');
      } else refused = true;
    } else {
      scopes = query
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      const creds = basicCredentials(headers.authorization ?? '');
      user = creds?.user;
      refused = creds !== undefined && this.users[creds.user] !== creds.password;
    }
    const record: TokenGrant = { scopes, granted: [], status: refused ? 401 : 200, ...(user === undefined ? {} : { user }) };
    this.grants.push(record);
    if (refused) return { status: 401, json: { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] } };
    const acl = config.acl ?? defaultAcl;
    for (const scope of scopes) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) continue;
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const allowed = acl(user, name, type);
      for (const action of scope.slice(last + 1).split(',')) {
        if (allowed.includes(action) || allowed.includes('*')) record.granted.push(`${type}:${name}:${action}`);
      }
    }
    const lifetime = config.lifetimeSeconds ?? 300;
    const token = randomBytes(18).toString('base64url');
    this.tokens.set(token, { ...(user === undefined ? {} : { user }), atoms: new Set(record.granted), expiresAt: Date.now() + lifetime * 1000 });
    return { status: 200, json: { token, access_token: token, expires_in: lifetime, issued_at: new Date().toISOString() } };
  }
}

/** `repository:a:pull,push repository:b:pull`: the needs grouped per resource. */
function scopeParam(needs: Need[]): string {
  const byResource = new Map<string, string[]>();
  for (const n of needs) {
    const key = `${n.type}:${n.name}`;
    byResource.set(key, [...(byResource.get(key) ?? []), n.action]);
  }
  return [...byResource].map(([resource, actions]) => `${resource}:${actions.join(',')}`).join(' ');
}

function basicCredentials(authorization: string): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(authorization);
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
