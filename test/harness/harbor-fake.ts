// A fake of Harbor's core in front of a real registry:2, just big enough for
// `ferry load --harbor-create-projects`: the project endpoints of API v2.0,
// Harbor's token service, and Harbor's gate on /v2/ (every repository lives
// in a project; a request into a missing project is refused as Harbor 2.x
// refuses it). Everything under /v2/ that passes the gate is proxied to the
// registry, which runs without auth, as Harbor's own registry sits behind
// core: core alone authenticates and authorizes.
//
// What real Harbor (2.x, src/server/middleware/v2auth/auth.go) answers for a
// repository request whose project does not exist, and what this fake copies:
// HTTP 401, `Www-Authenticate` present but empty (no challenge to answer),
// `{"errors":[{"code":"UNAUTHORIZED","message":"project P not found: project P not found"}]}`
// (an errors.UnauthorizedError wrapping the project DAO's not-found error,
// whose message Harbor's error JSON repeats after the wrapper's). Its token
// service grants no actions on a scope whose project is missing.
import { randomBytes } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { closeServer, listen } from './net.js';
import type { TestRegistry } from './registry.js';

export const HARBOR_TOKEN_SERVICE = 'harbor-registry';

export interface HarborProject {
  id: number;
  name: string;
  public: boolean;
  /** Who created it through the API; undefined for projects the test set up. */
  createdBy?: string;
}

export interface HarborCreation {
  user: string;
  /** The JSON body as received. */
  body: unknown;
  status: number;
}

export interface HarborApiRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  /** The Basic user, when the credentials were valid. */
  user?: string;
  status: number;
}

export interface HarborFake {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** "127.0.0.1:PORT": the registry host clients push to. */
  host: string;
  projects: Map<string, HarborProject>;
  /** Every POST /api/v2.0/projects, in order. */
  creations: HarborCreation[];
  /** Every request under /api/. */
  apiRequests: HarborApiRequest[];
  /** Every /v2/ request refused because its project does not exist. */
  refusals: Array<{ method: string; path: string; project: string }>;
  /** Every token issued by /service/token: for whom, what was asked and what was granted. */
  tokenRequests: Array<{ user?: string; scopes: string[]; granted: string[] }>;
  /** Adds a project as an admin would in the UI. */
  addProject(name: string, opts?: { public?: boolean }): HarborProject;
  stop(): Promise<void>;
}

export interface HarborFakeOptions {
  /** A registry:2 without auth (auth 'none'), reached only through the fake. */
  backend: TestRegistry;
  /** user -> password; robot accounts are users named `robot$NAME`. */
  users: Record<string, string>;
  projects?: string[];
  /**
   * What `HEAD /api/v2.0/projects?project_name=` answers for a missing project:
   * 404 (the API's documented answer, the default) or 403, as Harbor 2.x versions
   * whose RequireProjectAccess runs first answer an authenticated user.
   */
  missingProjectHeadStatus?: 404 | 403;
}

// Harbor project names: lowercase letters, digits and ._- separators, 1 to 255 characters.
const PROJECT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

interface Grant {
  user: string;
  /** repository name -> granted actions */
  access: Map<string, Set<string>>;
}

type V2Access = { target: 'login' } | { target: 'catalog' } | { target: 'repository'; name: string; action: 'pull' | 'push' | 'delete' };

export async function startHarborFake(opts: HarborFakeOptions): Promise<HarborFake> {
  if (opts.backend.auth !== 'none' || opts.backend.url.startsWith('https:')) {
    throw new Error('the Harbor fake fronts a plain-HTTP registry without auth');
  }
  const backend = new URL(opts.backend.url);
  const agent = new Agent({ keepAlive: true });
  const projects = new Map<string, HarborProject>();
  const creations: HarborCreation[] = [];
  const apiRequests: HarborApiRequest[] = [];
  const refusals: HarborFake['refusals'] = [];
  const tokenRequests: HarborFake['tokenRequests'] = [];
  const tokens = new Map<string, Grant>();
  let nextId = 1;
  let origin = '';

  const addProject = (name: string, o: { public?: boolean; createdBy?: string } = {}): HarborProject => {
    const p: HarborProject = { id: nextId++, name, public: o.public ?? false, ...(o.createdBy ? { createdBy: o.createdBy } : {}) };
    projects.set(name, p);
    return p;
  };
  for (const name of opts.projects ?? []) addProject(name);

  /** The user of valid Basic credentials; null when credentials were sent but are wrong. */
  const basicUser = (req: IncomingMessage): string | null | undefined => {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    const user = decoded.slice(0, colon);
    return opts.users[user] !== undefined && opts.users[user] === decoded.slice(colon + 1) ? user : null;
  };

  // ---- /api/v2.0/projects ----

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const method = req.method ?? 'GET';
    const record: HarborApiRequest = { method, path: req.url ?? '/', status: 0 };
    apiRequests.push(record);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      sendJson(res, status, body, headers, method === 'HEAD');
    };
    const body = await collect(req);
    const user = basicUser(req);
    if (!user) {
      send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
      return;
    }
    record.user = user;
    if (url.pathname !== '/api/v2.0/projects') {
      send(404, { errors: [{ code: 'NOT_FOUND', message: `the fake serves only /api/v2.0/projects, not ${url.pathname}` }] });
      return;
    }
    if (method === 'HEAD') {
      const name = url.searchParams.get('project_name');
      if (!name) send(400, { errors: [{ code: 'BAD_REQUEST', message: 'project_name is required' }] });
      else if (projects.has(name)) send(200);
      else if (opts.missingProjectHeadStatus === 403) send(403, { errors: [{ code: 'FORBIDDEN', message: 'forbidden' }] });
      else send(404, { errors: [{ code: 'NOT_FOUND', message: `project ${name} not found` }] });
      return;
    }
    if (method === 'GET') {
      // As Harbor: `name` matches as a substring; results come in pages (default 10, at most 100).
      const name = url.searchParams.get('name') ?? '';
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
      const size = Math.min(100, Math.max(1, Number(url.searchParams.get('page_size') ?? 10) || 10));
      const all = [...projects.values()].filter((p) => p.name.includes(name));
      const list = all.slice((page - 1) * size, page * size).map((p) => ({ project_id: p.id, name: p.name, metadata: { public: String(p.public) } }));
      send(200, list, { 'x-total-count': String(all.length) });
      return;
    }
    if (method === 'POST') {
      const creation: HarborCreation = { user, body: undefined, status: 0 };
      creations.push(creation);
      let doc: { project_name?: unknown; metadata?: { public?: unknown } };
      try {
        doc = JSON.parse(body.toString('utf8'));
        creation.body = doc;
      } catch {
        creation.status = 400;
        send(400, { errors: [{ code: 'BAD_REQUEST', message: 'the body is not JSON' }] });
        return;
      }
      const name = doc.project_name;
      const pub = doc.metadata?.public;
      if (typeof name !== 'string' || !PROJECT_NAME.test(name) || name.length > 255) {
        creation.status = 400;
        send(400, { errors: [{ code: 'BAD_REQUEST', message: `invalid project name ${JSON.stringify(name)}` }] });
        return;
      }
      if (pub !== undefined && pub !== 'true' && pub !== 'false') {
        creation.status = 400;
        send(400, { errors: [{ code: 'BAD_REQUEST', message: 'metadata.public must be "true" or "false"' }] });
        return;
      }
      if (projects.has(name)) {
        creation.status = 409;
        send(409, { errors: [{ code: 'CONFLICT', message: `The project named ${name} already exists` }] });
        return;
      }
      const p = addProject(name, { public: pub === 'true', createdBy: user });
      creation.status = 201;
      send(201, undefined, { location: `/api/v2.0/projects/${p.id}` });
      return;
    }
    send(405, { errors: [{ code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed` }] });
  };

  // ---- /service/token ----

  const tokenService = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    req.resume();
    const user = basicUser(req);
    if (user === null) {
      sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
      return;
    }
    const service = url.searchParams.get('service');
    if (service !== null && service !== HARBOR_TOKEN_SERVICE) {
      sendJson(res, 400, { errors: [{ code: 'BAD_REQUEST', message: `invalid service: ${service}` }] });
      return;
    }
    const access = new Map<string, Set<string>>();
    const scopes = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    for (const scope of scopes) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first || scope.slice(0, first) !== 'repository') continue;
      const name = scope.slice(first + 1, last);
      const project = projects.get(name.split('/')[0]!);
      // Harbor's repository filter: no actions on a missing project; anonymous users may pull public ones.
      const allowed = !project ? [] : user ? ['pull', 'push', 'delete', '*'] : project.public ? ['pull'] : [];
      const granted = scope
        .slice(last + 1)
        .split(',')
        .filter((a) => allowed.includes(a));
      access.set(name, new Set([...(access.get(name) ?? []), ...granted]));
    }
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { user: user ?? '', access });
    tokenRequests.push({
      ...(user ? { user } : {}),
      scopes,
      granted: [...access].map(([name, actions]) => `repository:${name}:${[...actions].join(',')}`),
    });
    sendJson(res, 200, { token, access_token: token, expires_in: 1800, issued_at: new Date().toISOString() });
  };

  // ---- /v2/ ----

  const v2Access = (method: string, pathname: string): V2Access | undefined => {
    if (pathname === '/v2/' || pathname === '/v2') return { target: 'login' };
    if (pathname === '/v2/_catalog') return { target: 'catalog' };
    const m = /^\/v2\/(.+?)\/(?:blobs|manifests|tags|referrers)(?:\/|$)/.exec(pathname);
    if (!m?.[1]) return undefined;
    const action = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push';
    return { target: 'repository', name: m[1], action };
  };

  const challenge = (req: IncomingMessage, a: V2Access): string => {
    // As Harbor: a client that sent credentials is told Basic; one that sent none is sent to the token service.
    if (req.headers.authorization) return 'Basic realm="harbor"';
    const scope = a.target === 'repository' ? `,scope="repository:${a.name}:${a.action === 'push' ? 'pull,push' : a.action}"` : '';
    return `Bearer realm="${origin}/service/token",service="${HARBOR_TOKEN_SERVICE}"${scope}`;
  };

  const refuse = (req: IncomingMessage, res: ServerResponse, wwwAuthenticate: string, message: string): void => {
    req.resume();
    sendJson(
      res,
      401,
      { errors: [{ code: 'UNAUTHORIZED', message }] },
      {
        'docker-distribution-api-version': 'registry/2.0',
        'www-authenticate': wwwAuthenticate,
      },
      req.method === 'HEAD',
    );
  };

  const v2 = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const method = req.method ?? 'GET';
    const a = v2Access(method, url.pathname);
    const auth = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
    const grant = bearer ? tokens.get(bearer) : undefined;
    const user = bearer ? grant?.user || undefined : (basicUser(req) ?? undefined);
    if (a?.target === 'login' || a?.target === 'catalog' || a === undefined) {
      if (!user) {
        refuse(req, res, challenge(req, a ?? { target: 'login' }), 'unauthorized');
        return;
      }
    } else {
      if (!auth && method === 'HEAD') {
        refuse(req, res, challenge(req, a), 'authorize header needed to send HEAD to repository');
        return;
      }
      const projectName = a.name.split('/')[0]!;
      if (!projects.has(projectName)) {
        refusals.push({ method, path: req.url ?? '/', project: projectName });
        const notFound = `project ${projectName} not found`;
        refuse(req, res, '', `${notFound}: ${notFound}`);
        return;
      }
      const can = bearer ? (grant?.access.get(a.name)?.has(a.action) ?? false) || (grant?.access.get(a.name)?.has('*') ?? false) : user !== undefined;
      if (!can) {
        const why = `unauthorized to access repository: ${a.name}, action: ${a.action}`;
        refuse(req, res, challenge(req, a), `${why}: ${why}`);
        return;
      }
    }
    forward(req, res);
  };

  // Registry Location headers carry the backend's origin; clients must come back here.
  const rewrite = (name: string, value: string) =>
    name === 'location' && value.startsWith(backend.origin) ? origin + value.slice(backend.origin.length) : value;

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const upstreamReq = httpRequest(
      { agent, host: backend.hostname, port: backend.port, method: req.method, path: req.url, headers: endToEnd(req.headers) },
      (upstreamRes) => {
        const raw = upstreamRes.rawHeaders;
        const headers: string[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = raw[i]!;
          if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, rewrite(name.toLowerCase(), raw[i + 1]!));
        }
        res.writeHead(upstreamRes.statusCode ?? 502, headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', (error) => {
      if (res.headersSent) res.destroy();
      else sendJson(res, 502, { errors: [{ code: 'UNKNOWN', message: `upstream error: ${error.message}` }] });
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://harbor.invalid');
    if (url.pathname.startsWith('/api/')) {
      api(req, res, url).catch(() => res.destroy());
    } else if (url.pathname === '/service/token') {
      tokenService(req, res, url);
    } else if (url.pathname === '/v2' || url.pathname.startsWith('/v2/')) {
      v2(req, res, url);
    } else {
      req.resume();
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: `${url.pathname} is not served by the fake` }] });
    }
  });

  const host = await listen(server);
  origin = `http://${host}`;
  return {
    url: origin,
    host,
    projects,
    creations,
    apiRequests,
    refusals,
    tokenRequests,
    addProject: (name, o) => addProject(name, o),
    async stop() {
      await closeServer(server);
      agent.destroy();
    },
  };
}

/** The end-to-end request headers, without credentials meant for the fake: the backend has no auth. */
function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name) && name !== 'host' && name !== 'authorization'));
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, head = false): void {
  // Harbor's error writer ends the JSON with a newline (fmt.Fprintln).
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(`${JSON.stringify(body)}\n`);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': bytes.length,
    ...headers,
  });
  res.end(head ? undefined : bytes);
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
