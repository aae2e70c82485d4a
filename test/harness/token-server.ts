// A Docker token-spec authorization server
// (https://distribution.github.io/distribution/spec/auth/token/), just big
// enough for registry 2.8 and the clients under test.
import { createPrivateKey, type KeyObject, randomUUID, sign, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listen } from './net.js';

/**
 * Actions `user` (undefined = anonymous) may perform on a resource. `type` is
 * the scope's resource type: 'repository' for repositories, 'registry' for
 * `registry:catalog:*`.
 */
export type Acl = (user: string | undefined, name: string, type?: string) => string[];

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequest {
  user?: string;
  /** Raw scope strings, e.g. "repository:team/app:pull,push". */
  scopes: string[];
  granted: Access[];
  /** HTTP status the token server answered with. */
  status: number;
}

/**
 * A misbehaving answer to the next token requests: 'endless' sends a 200 whose body
 * never ends (as fast as the client reads); 'stall' sends the headers and half the
 * token, then nothing.
 */
export type TokenFault = 'endless' | 'stall';

export interface TestTokenServer {
  /** Base URL; the realm is `${url}/token`. */
  url: string;
  requests: TokenRequest[];
  /** The next `times` token requests get `fault` instead of a token. */
  addFault(fault: TokenFault, times?: number): void;
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  users: Record<string, string>;
  acl: Acl;
  service: string;
  issuer: string;
  /** PEM RSA private key that signs tokens. */
  key: string;
  /** PEM certificate for `key`; sent in the JWT header as x5c. */
  cert: string;
}

export const DEFAULT_USERS: Readonly<Record<string, string>> = {
  alice: 'alice-secret',
  bob: 'bob-secret',
};

/**
 * alice may do everything (delete too, since the test registries enable it,
 * and list the catalog); bob may only pull; anonymous users get nothing.
 */
export const defaultAcl: Acl = (user, _name, type = 'repository') => {
  if (type === 'registry') return user === 'alice' ? ['*'] : [];
  if (user === 'alice') return ['pull', 'push', 'delete'];
  if (user === 'bob') return ['pull'];
  return [];
};

const TOKEN_LIFETIME_SECONDS = 300;

export async function startTokenServer(opts: TokenServerOptions): Promise<TestTokenServer> {
  const signingKey = createPrivateKey(opts.key);
  // Registry 2.8 only accepts tokens whose header carries the signing
  // certificate chain (x5c), verified against its rootcertbundle.
  const x5c = [new X509Certificate(opts.cert).raw.toString('base64')];
  const requests: TokenRequest[] = [];
  const faults: TokenFault[] = [];

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const fault = faults.shift();
    if (fault) {
      requests.push({ scopes: url.searchParams.getAll('scope'), granted: [], status: 200 });
      misbehave(res, fault);
      return;
    }
    if (req.method !== 'GET' || url.pathname !== '/token') {
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'only GET /token is served' }] });
      return;
    }
    // A scope parameter may itself hold several space-separated scopes.
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const record: TokenRequest = { scopes, granted: [], status: 200 };
    requests.push(record);

    const credentials = basicCredentials(req);
    if (credentials && opts.users[credentials.user] !== credentials.password) {
      record.user = credentials.user;
      record.status = 401;
      res.setHeader('WWW-Authenticate', 'Basic realm="ferry-test-token-server"');
      sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] });
      return;
    }
    const service = url.searchParams.get('service');
    if (service !== null && service !== opts.service) {
      record.status = 400;
      sendJson(res, 400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${service}` }] });
      return;
    }
    // The spec's `account` parameter only names the user; the Basic
    // credentials are what authenticate, so it is otherwise ignored.
    record.user = credentials?.user;
    record.granted = scopes.flatMap((scope) => grant(opts.acl, record.user, scope));

    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(signingKey, x5c, {
      iss: opts.issuer,
      sub: record.user ?? '',
      aud: opts.service,
      exp: now + TOKEN_LIFETIME_SECONDS,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: record.granted,
    });
    sendJson(res, 200, {
      token,
      access_token: token,
      expires_in: TOKEN_LIFETIME_SECONDS,
      issued_at: new Date(now * 1000).toISOString(),
    });
  });

  const host = await listen(server);
  return {
    url: `http://${host}`,
    requests,
    addFault: (fault, times = 1) => {
      for (let i = 0; i < times; i++) faults.push(fault);
    },
    stop: () => closeServer(server),
  };
}

function misbehave(res: ServerResponse, fault: TokenFault): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.write('{"token":"');
  if (fault === 'stall') return; // held open until the client gives up or the server stops
  const filler = Buffer.alloc(64 * 1024, 'a');
  const more = (): void => {
    while (!res.destroyed && res.write(filler)) {
      // keep writing while the socket takes it
    }
    if (!res.destroyed) res.once('drain', more);
  };
  more();
}

/**
 * Grants the requested actions that the ACL allows. A scope with none of its
 * actions allowed still appears, with no actions, as distribution's own token
 * servers do. Malformed scopes are dropped.
 */
function grant(acl: Acl, user: string | undefined, scope: string): Access[] {
  // type:name:actions, where the name may itself contain colons (host:port/repo).
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return [];
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const allowed = acl(user, name, type);
  const requested = scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean);
  return [{ type, name, actions: requested.filter((action) => allowed.includes(action)) }];
}

function basicCredentials(req: IncomingMessage): { user: string; password: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function signJwt(key: KeyObject, x5c: string[], claims: object): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${encode({ typ: 'JWT', alg: 'RS256', x5c })}.${encode(claims)}`;
  const signature = sign('RSA-SHA256', Buffer.from(signingInput), key).toString('base64url');
  return `${signingInput}.${signature}`;
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
}
