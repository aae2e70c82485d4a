/**
 * `ferry login REGISTRY -u USER --password-stdin`: checks the credentials against
 * the registry, then stores them where `docker login` would.
 */
import { CredentialStore, registryOfAuthKey, usageError } from '@ferry/oci-client';
import type { Context } from '../context.js';

export interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
}

export async function loginCommand(ctx: Context, server: string, opts: LoginOptions, stdin: NodeJS.ReadableStream = process.stdin): Promise<void> {
  if (!opts.username) throw usageError('login needs a user name: ferry login REGISTRY -u USER --password-stdin');
  if (!opts.passwordStdin)
    throw usageError('login reads the password from standard input only: add --password-stdin (a password on the command line would leak into shell history)');
  const registry = registryOfAuthKey(server);
  const password = (await readAll(stdin)).replace(/\r?\n$/, '');
  if (!password) throw usageError('no password on standard input');
  const cred = { username: opts.username, password };
  const client = ctx.client({ credentials: new CredentialStore({ env: ctx.env, explicit: new Map([[registry, cred]]) }) });
  try {
    await client.registry(registry).ping();
  } finally {
    await client.close();
  }
  const store = new CredentialStore({ env: ctx.env });
  await store.store(registry, cred);
  ctx.result(`Login Succeeded (${registry})`, { registry, username: opts.username, config: store.configPath });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(parts).toString('utf8');
}
