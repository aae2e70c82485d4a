/**
 * Harbor projects: in Harbor the first path part after the host is a project,
 * and a push into a missing project fails. With --harbor-create-projects, load
 * makes sure each target project exists first (API v2.0), creating it private,
 * with the same credentials as the registry (robot accounts included).
 */
import { type CredentialStore, FerryError, header, type Transport } from '@ferry/oci-client';

export class HarborProjects {
  constructor(
    private readonly registry: string,
    private readonly transport: Transport,
    private readonly credentials: CredentialStore,
  ) {}

  private async headers(): Promise<Record<string, string>> {
    const cred = await this.credentials.get(this.registry);
    const h: Record<string, string> = { accept: 'application/json' };
    if (cred && 'password' in cred) h.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    return h;
  }

  private async url(path: string): Promise<string> {
    return (await this.transport.baseUrl(this.registry)) + path;
  }

  async exists(project: string): Promise<boolean> {
    const res = await this.transport.request({
      method: 'HEAD',
      url: await this.url(`/api/v2.0/projects?project_name=${encodeURIComponent(project)}`),
      headers: await this.headers(),
    });
    await res.body.dump();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    // Some Harbor 2.x versions answer 403 (not 404) for a project that does not exist; the list tells.
    if (res.status === 403) {
      const listed = await this.listed(project);
      if (listed !== undefined) return listed;
    }
    throw this.failure(res.status, `checking project ${project}`);
  }

  /**
   * Whether `GET /api/v2.0/projects?name=` lists the project. Harbor matches that
   * name as a substring, so the answer is looked through for the exact name.
   * Undefined when there is no such API (a plain registry), it refuses, or there
   * are no credentials to ask with (anonymous users see only public projects).
   */
  async listed(project: string): Promise<boolean | undefined> {
    const headers = await this.headers();
    if (!headers.authorization) return undefined;
    const res = await this.transport.request({
      method: 'GET',
      url: await this.url(`/api/v2.0/projects?name=${encodeURIComponent(project)}&page_size=100`),
      headers,
    });
    const text = await res.body.text();
    if (res.status !== 200) return undefined;
    try {
      const list: unknown = JSON.parse(text);
      return Array.isArray(list) ? list.some((p) => (p as { name?: unknown } | null)?.name === project) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Creates the project (private) unless it exists; returns true when it was created. */
  async ensure(project: string): Promise<boolean> {
    if (await this.exists(project)) return false;
    const res = await this.transport.request({
      method: 'POST',
      url: await this.url('/api/v2.0/projects'),
      headers: { ...(await this.headers()), 'content-type': 'application/json' },
      body: JSON.stringify({ project_name: project, metadata: { public: 'false' } }),
    });
    await res.body.dump();
    if (res.status === 201) return true;
    if (res.status === 409) return false; // created meanwhile by someone else
    throw this.failure(res.status, `creating project ${project}`, header(res.headers, 'x-request-id'));
  }

  private failure(status: number, what: string, requestId?: string): FerryError {
    const why =
      status === 401
        ? `credentials were rejected; run \`ferry login ${this.registry}\``
        : status === 403
          ? 'the account may not do this (creating projects needs a Harbor admin or a robot account with project creation rights)'
          : `Harbor answered HTTP ${status}${requestId ? ` (request ${requestId})` : ''}`;
    return new FerryError(status === 401 || status === 403 ? 'auth' : 'registry', `${status} ${what} in Harbor at ${this.registry}: ${why}`, {
      status,
      registry: this.registry,
      operation: what,
    });
  }
}

/** The Harbor project of a repository: its first path part. */
export function projectOf(repository: string): string {
  return repository.split('/')[0]!;
}
