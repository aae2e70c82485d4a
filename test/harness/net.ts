// Loopback-only networking helpers shared by the harness servers.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

export const LOOPBACK = '127.0.0.1';

/**
 * A port that was free a moment ago. Another process may take it before the
 * caller binds it, so callers that hand it to a child process must retry.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, LOOPBACK, () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

/** Binds an HTTP server to an ephemeral loopback port; resolves to "127.0.0.1:PORT". */
export function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      if (address && typeof address === 'object') resolve(`${LOOPBACK}:${address.port}`);
      else reject(new Error('server has no TCP address'));
    });
  });
}

/** Closes a server, dropping idle keep-alive connections instead of waiting for them. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const tlsDispatchers = new Map<string, Dispatcher>();

/**
 * An undici dispatcher that trusts the harness CA in `caFile`, or undefined
 * (the default dispatcher) for plain HTTP. Cached per CA because closing a
 * dispatcher would cut response bodies that callers are still reading.
 */
export function dispatcherFor(caFile: string | undefined): Dispatcher | undefined {
  if (!caFile) return undefined;
  let dispatcher = tlsDispatchers.get(caFile);
  if (!dispatcher) {
    dispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
    tlsDispatchers.set(caFile, dispatcher);
  }
  return dispatcher;
}
