// What the client tests share: a credential store that knows only what a test gives it
// (no docker config, no helpers), and the FerryError a promise must reject with.
import { type Credential, CredentialStore, FerryError } from '@ferry/oci-client';
import { expect } from 'vitest';

export function explicitCredentials(credentials: Record<string, Credential> = {}): CredentialStore {
  return new CredentialStore({ env: {}, configPath: '/nonexistent/ferry-test/config.json', explicit: new Map(Object.entries(credentials)) });
}

/** Expects `promise` to reject with a FerryError and returns it. */
export async function ferryError(promise: Promise<unknown>): Promise<FerryError> {
  const e: unknown = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FerryError);
  return e as FerryError;
}
