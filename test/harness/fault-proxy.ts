// A forwarding proxy in front of a plain-HTTP registry that injects faults
// (error statuses, resets, cut, stalled or corrupted bodies, rewritten headers,
// redirects, outages of a few seconds) on chosen requests, and a second origin
// that serves blobs, as a CDN behind a redirect would.
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { closeServer, LOOPBACK, listen } from './net.js';

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  headers: IncomingHttpHeaders;
}

export type FaultAction =
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward the upstream response, then close the connection after this many body bytes. */
  | { type: 'cut'; afterBytes: number }
  /** Flip one byte in the middle of the response body; length and headers stay. */
  | { type: 'corrupt' }
  /** Answer 307 with Location = `to` (another origin's base URL) + the original path and query. */
  | { type: 'redirect'; to: string }
  /** Reset the connection (TCP RST) once this many request body bytes have arrived (0: at once). */
  | { type: 'reset'; afterRequestBytes?: number }
  /**
   * Forward the upstream response's headers and `afterBytes` body bytes, then hold the
   * connection open: silent, or sending one more byte every `dripMs`.
   */
  | { type: 'stall'; afterBytes: number; dripMs?: number }
  /** Forward, with response headers changed by `rewrite` (undefined drops one) and `add`ed. */
  | { type: 'headers'; rewrite?: (name: string, value: string) => string | undefined; add?: Record<string, string> }
  /** Reset this request's connection and be down for `ms`: refusing connections, or resetting each. */
  | { type: 'outage'; ms: number; mode: 'refuse' | 'reset' };

export interface FaultRule {
  /** Any method when absent. */
  method?: string;
  /** Tested against path and query (avoid the g and y flags: they make test() stateful). */
  path: RegExp;
  /** How many matching requests the rule applies to; default Infinity. */
  times?: number;
  /** Matching requests let through untouched before the rule applies; default 0. */
  after?: number;
  action: FaultAction;
}

export interface FaultProxy {
  url: string;
  host: string;
  requests: RecordedRequest[];
  addRule(rule: FaultRule): void;
  clearRules(): void;
  /** Down for `ms` from now: 'refuse' closes the port, 'reset' accepts and resets every connection. */
  outage(ms: number, mode: 'refuse' | 'reset'): Promise<void>;
  /** Resolves when the last outage is over and the proxy answers again. */
  restored(): Promise<void>;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  /**
   * Sent upstream as Authorization on every request, replacing the client's: the proxy
   * stands in for a service that authorises requests by their URL (a signed upload
   * location on another origin), so the client must not send credentials there.
   */
  upstreamAuthorization?: string;
}

// Hop-by-hop headers describe one connection, not the message (RFC 9110 7.6.1);
// node sets its own for each side.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name) && name !== 'host'));
}

/** Response headers as a flat [name, value, …] list, keeping repeated headers as sent. */
function responseHeaders(upstream: IncomingMessage, rewrite: (name: string, value: string) => string | undefined): string[] {
  const raw = upstream.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    const value = rewrite(name.toLowerCase(), raw[i + 1] as string);
    if (value !== undefined) out.push(name, value);
  }
  return out;
}

function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/**
 * Sends `req` on to `upstream` with `headers`, streaming the body both ways,
 * and hands the upstream response to `respond`. Errors become 502 or, once
 * the response has started, a closed connection.
 */
function forward(
  agent: Agent,
  upstream: URL,
  req: IncomingMessage,
  res: ServerResponse,
  headers: OutgoingHttpHeaders,
  respond: (upstreamRes: IncomingMessage) => void,
): void {
  const upstreamReq = httpRequest({ agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, respond);
  upstreamReq.on('error', (error) => {
    if (res.headersSent) {
      res.destroy();
    } else {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`upstream error: ${error.message}`);
    }
  });
  // A client that goes away mid-transfer should not leave the upstream request running.
  res.on('close', () => {
    if (!res.writableFinished) upstreamReq.destroy();
  });
  req.pipe(upstreamReq);
}

export async function startFaultProxy(upstreamUrl: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  let rules: Array<{ rule: FaultRule; remaining: number; skip: number }> = [];
  let origin = '';

  const takeRule = (method: string, path: string): FaultAction | undefined => {
    const entry = rules.find(
      ({ rule, remaining }) => remaining > 0 && (rule.method === undefined || rule.method.toUpperCase() === method) && rule.path.test(path),
    );
    if (!entry) return undefined;
    if (entry.skip > 0) {
      entry.skip--;
      return undefined;
    }
    entry.remaining--;
    return entry.rule.action;
  };

  // Registry Location headers carry the upstream's origin; clients must come back here.
  const rewrite = (name: string, value: string) =>
    name === 'location' && value.startsWith(upstream.origin) ? origin + value.slice(upstream.origin.length) : value;

  const sockets = new Set<Socket>();
  let resetting = false;
  let back: Promise<void> = Promise.resolve();

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    requests.push({ method, path, headers: req.headers });
    const action = takeRule(method, path);

    if (action?.type === 'reset') {
      resetAfter(req, action.afterRequestBytes ?? 0);
      return;
    }
    if (action?.type === 'outage') {
      req.socket.resetAndDestroy();
      void proxy.outage(action.ms, action.mode);
      return;
    }
    if (action?.type === 'status' || action?.type === 'redirect') {
      req.resume(); // the request body is not wanted
      if (action.type === 'status') {
        res.writeHead(action.status, action.headers);
        res.end(action.body);
      } else {
        res.writeHead(307, { location: action.to.replace(/\/+$/, '') + path, 'content-length': '0' });
        res.end();
      }
      return;
    }

    const headers = endToEnd(req.headers);
    if (opts.upstreamAuthorization) headers.authorization = opts.upstreamAuthorization;
    forward(agent, upstream, req, res, headers, (upstreamRes) => {
      const changed = action?.type === 'headers' ? action.rewrite : undefined;
      const out = responseHeaders(upstreamRes, (name, value) => {
        const v = rewrite(name, value);
        return changed ? changed(name, v) : v;
      });
      if (action?.type === 'headers') for (const [name, value] of Object.entries(action.add ?? {})) out.push(name, value);
      res.writeHead(upstreamRes.statusCode ?? 502, out);
      if (action?.type === 'cut') cutAfter(upstreamRes, res, action.afterBytes);
      else if (action?.type === 'stall') stallAfter(upstreamRes, res, action.afterBytes, action.dripMs);
      else if (action?.type === 'corrupt') void corrupt(upstreamRes, res);
      else upstreamRes.pipe(res);
    });
  });
  server.on('connection', (socket: Socket) => {
    if (resetting) {
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const host = await listen(server);
  const port = Number(host.split(':')[1]);
  origin = `http://${host}`;
  const proxy: FaultProxy = {
    url: origin,
    host,
    requests,
    addRule: (rule) => rules.push({ rule, remaining: rule.times ?? Infinity, skip: rule.after ?? 0 }),
    clearRules: () => {
      rules = [];
    },
    outage(ms, mode) {
      for (const socket of sockets) socket.resetAndDestroy();
      if (mode === 'reset') {
        resetting = true;
        back = new Promise((resolve) =>
          setTimeout(() => {
            resetting = false;
            resolve();
          }, ms),
        );
        return Promise.resolve();
      }
      // Closing the listener makes new connections fail with ECONNREFUSED; the same
      // port is taken again afterwards (nothing else binds it in a few seconds).
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      back = closed.then(
        () =>
          new Promise<void>((resolve, reject) => {
            setTimeout(() => {
              server.once('error', reject);
              server.listen(port, LOOPBACK, () => {
                server.off('error', reject);
                resolve();
              });
            }, ms);
          }),
      );
      return closed;
    },
    restored: () => back,
    async stop() {
      await back.catch(() => undefined);
      await closeServer(server);
      agent.destroy();
    },
  };
  return proxy;
}

/** Reads `after` bytes of the request body (or none), then resets the connection. */
function resetAfter(req: IncomingMessage, after: number): void {
  if (after <= 0) {
    req.socket.resetAndDestroy();
    return;
  }
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen >= after) req.socket.resetAndDestroy();
  });
  req.on('end', () => req.socket.resetAndDestroy());
}

/** Passes `afterBytes` body bytes on, then stops: silence, or a byte every `dripMs`. */
function stallAfter(upstreamRes: IncomingMessage, res: ServerResponse, afterBytes: number, dripMs: number | undefined): void {
  res.flushHeaders();
  void collect(upstreamRes).then(
    (body) => {
      res.write(body.subarray(0, afterBytes));
      if (!dripMs) return;
      let at = afterBytes;
      const timer = setInterval(() => {
        if (at >= body.length || res.destroyed) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(body.subarray(at, at + 1));
        at++;
      }, dripMs);
      res.on('close', () => clearInterval(timer));
    },
    () => res.destroy(),
  );
}

/** Passes `afterBytes` body bytes on, then ends the connection with the body unfinished. */
function cutAfter(upstreamRes: IncomingMessage, res: ServerResponse, afterBytes: number): void {
  let sent = 0;
  const cut = () => {
    upstreamRes.destroy();
    // end(), not destroy(): the bytes already written must still reach the client.
    res.socket?.end();
  };
  res.flushHeaders();
  if (afterBytes <= 0) {
    cut();
    return;
  }
  upstreamRes.on('data', (chunk: Buffer) => {
    const room = afterBytes - sent;
    if (chunk.length < room) {
      sent += chunk.length;
      res.write(chunk);
    } else {
      res.write(chunk.subarray(0, room));
      cut();
    }
  });
  // Bodies shorter than afterBytes pass through whole.
  upstreamRes.on('end', () => res.end());
}

async function corrupt(upstreamRes: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const body = await collect(upstreamRes);
    const middle = body.length >> 1;
    if (body.length > 0) body[middle] = (body[middle] as number) ^ 0xff;
    res.end(body);
  } catch {
    res.destroy();
  }
}

export interface BlobOrigin {
  url: string;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

const BLOB_PATH = /^\/v2\/.+\/blobs\/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
// Only what a blob GET needs; notably no Authorization, which the upstream must not require.
const BLOB_REQUEST_HEADERS = ['accept', 'range', 'if-range', 'if-none-match'];

/**
 * A second origin (own port) serving GET/HEAD /v2/<name>/blobs/<digest> from
 * the no-auth registry at `upstreamUrl`: the target of 'redirect' rules.
 */
export async function startBlobOrigin(upstreamUrl: string): Promise<BlobOrigin> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    requests.push({ method, path, headers: req.headers });
    const pathname = new URL(path, 'http://origin.invalid').pathname;
    if ((method !== 'GET' && method !== 'HEAD') || !BLOB_PATH.test(pathname)) {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('blob origin serves only GET/HEAD of /v2/<name>/blobs/<digest>');
      return;
    }
    const headers = Object.fromEntries(
      BLOB_REQUEST_HEADERS.flatMap((name) => {
        const value = req.headers[name];
        return value === undefined ? [] : [[name, value]];
      }),
    );
    forward(agent, upstream, req, res, headers, (upstreamRes) => {
      res.writeHead(
        upstreamRes.statusCode ?? 502,
        responseHeaders(upstreamRes, (_, value) => value),
      );
      upstreamRes.pipe(res);
    });
  });

  const host = await listen(server);
  return {
    url: `http://${host}`,
    requests,
    async stop() {
      await closeServer(server);
      agent.destroy();
    },
  };
}
