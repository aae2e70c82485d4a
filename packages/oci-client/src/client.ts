/**
 * The entry point of the registry client: one transport and one credential
 * store shared by a RegistryClient per registry host.
 */
import { CredentialStore } from './credentials.js';
import { parseReference, type Reference } from './reference.js';
import { RegistryClient } from './registry.js';
import { Transport, type TransportOptions } from './transport.js';

export interface OciClientOptions extends TransportOptions {
  credentials?: CredentialStore;
}

export class OciClient {
  readonly transport: Transport;
  readonly credentials: CredentialStore;
  private readonly registries = new Map<string, RegistryClient>();

  constructor(opts: OciClientOptions = {}) {
    this.transport = new Transport(opts);
    this.credentials = opts.credentials ?? new CredentialStore({ env: opts.env });
  }

  /** The client for a registry host (`docker.io`, `127.0.0.1:5000`). */
  registry(host: string): RegistryClient {
    let r = this.registries.get(host);
    if (!r) {
      r = new RegistryClient(host, this.transport, this.credentials);
      this.registries.set(host, r);
    }
    return r;
  }

  /** Parses a reference and returns it with its registry's client. */
  at(reference: string): { ref: Reference; registry: RegistryClient } {
    const ref = parseReference(reference);
    return { ref, registry: this.registry(ref.registry) };
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
