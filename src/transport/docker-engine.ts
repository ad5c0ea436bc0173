import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';

/** An image as the Docker Engine lists it. */
export interface DaemonImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  created: number;
}

/** An error answer of the Engine API, with its HTTP status. */
export class DockerEngineError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** Where `DOCKER_HOST`-style text points: a unix socket or a TCP base URL. */
export function parseDaemonHost(host: string): { socketPath?: string; origin: string } {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length), origin: 'http://docker' };
  if (host.startsWith('/')) return { socketPath: host, origin: 'http://docker' };
  if (host.startsWith('tcp://')) return { origin: `http://${host.slice('tcp://'.length)}` };
  if (host.startsWith('http://')) return { origin: host.replace(/\/$/, '') };
  throw new Error(`unsupported Docker host "${host}": use unix:///path/to/docker.sock or tcp://HOST:PORT`);
}

/** The daemon a command talks to: the explicit option, else DOCKER_HOST, else the usual socket. */
export function defaultDaemonHost(explicit?: string): string {
  return explicit || process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** A small client for the Docker Engine API calls Sluice needs (list, inspect, export, import). */
export class DockerEngine {
  private readonly dispatcher: Agent;
  private readonly origin: string;
  private prefix: string | undefined;

  constructor(readonly host: string) {
    const { socketPath, origin } = parseDaemonHost(host);
    this.origin = origin;
    this.dispatcher = new Agent(socketPath ? { connect: { socketPath } } : {});
  }

  // The daemon's own API version: every call Sluice makes exists unchanged since 1.24.
  private async versionPrefix(): Promise<string> {
    if (this.prefix === undefined) {
      const r = await this.raw('GET', '/version');
      const v = (await r.body.json()) as { ApiVersion?: string };
      this.prefix = v.ApiVersion && /^\d+\.\d+$/.test(v.ApiVersion) ? `/v${v.ApiVersion}` : '';
    }
    return this.prefix;
  }

  private async raw(method: Dispatcher.HttpMethod, path: string, body?: Readable, headers: Record<string, string> = {}): Promise<Dispatcher.ResponseData> {
    let r: Dispatcher.ResponseData;
    try {
      r = await request(`${this.origin}${path}`, { method, dispatcher: this.dispatcher, headers, ...(body ? { body } : {}) });
    } catch (e) {
      throw new Error(`cannot reach the Docker daemon at ${this.host}: ${(e as Error).message}`);
    }
    if (r.statusCode >= 400) {
      const text = await r.body.text();
      let message = text.trim();
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the text
      }
      throw new DockerEngineError(`Docker daemon ${this.host}: ${method} ${path.split('?')[0]}: ${message} (HTTP ${r.statusCode})`, r.statusCode);
    }
    return r;
  }

  private async call(method: Dispatcher.HttpMethod, path: string, body?: Readable, headers?: Record<string, string>): Promise<Dispatcher.ResponseData> {
    return this.raw(method, `${await this.versionPrefix()}${path}`, body, headers);
  }

  /** Every image with its RepoTags and RepoDigests (`GET /images/json`). */
  async listImages(): Promise<DaemonImage[]> {
    const r = await this.call('GET', '/images/json');
    const list = (await r.body.json()) as { Id: string; RepoTags?: string[] | null; RepoDigests?: string[] | null; Size: number; Created: number }[];
    return list.map((i) => ({
      id: i.Id,
      // The daemon lists untagged images as `<none>:<none>`.
      repoTags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      repoDigests: (i.RepoDigests ?? []).filter((d) => !d.startsWith('<none>@')),
      size: i.Size,
      created: i.Created,
    }));
  }

  /** The image's ID (config digest), or undefined when the daemon has no such image. */
  async imageId(name: string): Promise<string | undefined> {
    try {
      const r = await this.call('GET', `/images/${name.split("/").map(encodeURIComponent).join("/")}/json`);
      return ((await r.body.json()) as { Id: string }).Id;
    } catch (e) {
      if (e instanceof DockerEngineError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Streams `docker save` of the named images (`GET /images/get?names=`). */
  async exportImages(names: string[]): Promise<Readable> {
    const q = names.map((n) => `names=${encodeURIComponent(n)}`).join('&');
    const r = await this.call('GET', `/images/get?${q}`);
    return r.body;
  }

  /** Loads a `docker save` archive (`POST /images/load`); returns the daemon's "Loaded image" lines. */
  async loadImages(archive: Readable): Promise<string[]> {
    const r = await this.call('POST', '/images/load', archive, { 'content-type': 'application/x-tar' });
    const text = await r.body.text();
    const loaded: string[] = [];
    // The answer is a stream of JSON messages; a failed load still answers 200 with an "error" message.
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let msg: { stream?: string; error?: string; errorDetail?: { message?: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue;
      }
      if (msg.error || msg.errorDetail) throw new DockerEngineError(`Docker daemon ${this.host}: load failed: ${msg.errorDetail?.message ?? msg.error}`, 500);
      if (msg.stream?.trim()) loaded.push(msg.stream.trim());
    }
    return loaded;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
