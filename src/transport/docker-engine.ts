import http from 'node:http';
import { readDeclared } from './bounded.js';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

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
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Where `DOCKER_HOST`-style text points: a unix socket or a TCP host and port. */
export function parseDaemonHost(host: string): { socketPath?: string; hostname?: string; port?: number } {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) };
  if (host.startsWith('/')) return { socketPath: host };
  const m = /^(?:tcp|http):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(host);
  if (m) return { hostname: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 2375 };
  throw new Error(`unsupported Docker host "${host}": use unix:///path/to/docker.sock or tcp://HOST:PORT`);
}

/** The daemon a command talks to: the explicit option, else DOCKER_HOST, else the usual socket. */
export function defaultDaemonHost(explicit?: string): string {
  return explicit || process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** The most read whole of one daemon answer (an image list, an inspect), and of an error: a daemon's socket may be anyone's. */
const MAX_DAEMON_ANSWER = 16 << 20;
const MAX_ERROR = 64 << 10;

async function readText(res: http.IncomingMessage, maxBytes = MAX_DAEMON_ANSWER): Promise<string> {
  const length = res.headers['content-length'];
  return (await readDeclared(res, length, "the Docker daemon's answer", { maxBytes })).toString('utf8');
}

/**
 * A small client for the Docker Engine API calls Sluice needs (list, inspect, export, import).
 * It uses node:http rather than undici: against dockerd's chunked export, undici 7 slowed to a crawl and
 * buffered hundreds of MB as soon as the consumer applied backpressure (writing to disk), while
 * node:http keeps the flow and memory flat.
 */
export class DockerEngine {
  private readonly target: { socketPath?: string; hostname?: string; port?: number };
  private prefix: string | undefined;

  constructor(readonly host: string) {
    this.target = parseDaemonHost(host);
  }

  // The daemon's own API version: every call Sluice makes exists unchanged since 1.24.
  private async versionPrefix(): Promise<string> {
    if (this.prefix === undefined) {
      const v = JSON.parse(await readText(await this.raw('GET', '/version'))) as { ApiVersion?: string };
      this.prefix = v.ApiVersion && /^\d+\.\d+$/.test(v.ApiVersion) ? `/v${v.ApiVersion}` : '';
    }
    return this.prefix;
  }

  private async raw(
    method: string,
    path: string,
    body?: Readable,
    headers: Record<string, string> = {},
  ): Promise<http.IncomingMessage> {
    let res: http.IncomingMessage;
    try {
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({ ...this.target, path, method, headers: { host: 'docker', ...headers } }, resolve);
        req.on('error', reject);
        if (body) pipeline(body, req).catch((e: unknown) => req.destroy(e as Error));
        else req.end();
      });
    } catch (e) {
      throw new Error(`cannot reach the Docker daemon at ${this.host}: ${(e as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      const text = await readText(res, MAX_ERROR).catch((e: Error) => e.message);
      let message = text.trim();
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the text
      }
      throw new DockerEngineError(
        `Docker daemon ${this.host}: ${method} ${path.split('?')[0]}: ${message} (HTTP ${status})`,
        status,
      );
    }
    return res;
  }

  private async call(
    method: string,
    path: string,
    body?: Readable,
    headers?: Record<string, string>,
  ): Promise<http.IncomingMessage> {
    return this.raw(method, `${await this.versionPrefix()}${path}`, body, headers);
  }

  /** Every image with its RepoTags and RepoDigests (`GET /images/json`). */
  async listImages(): Promise<DaemonImage[]> {
    const r = await this.call('GET', '/images/json');
    const list = JSON.parse(await readText(r)) as {
      Id: string;
      RepoTags?: string[] | null;
      RepoDigests?: string[] | null;
      Size: number;
      Created: number;
    }[];
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
      const r = await this.call('GET', `/images/${name.split('/').map(encodeURIComponent).join('/')}/json`);
      return (JSON.parse(await readText(r)) as { Id: string }).Id;
    } catch (e) {
      if (e instanceof DockerEngineError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Streams `docker save` of the named images, or of images by ID (`GET /images/get?names=`). */
  async exportImages(names: string[]): Promise<Readable> {
    const q = names.map((n) => `names=${encodeURIComponent(n)}`).join('&');
    return this.call('GET', `/images/get?${q}`);
  }

  /** Loads a `docker save` archive (`POST /images/load`); returns the daemon's "Loaded image" lines. */
  async loadImages(archive: Readable): Promise<string[]> {
    const r = await this.call('POST', '/images/load', archive, { 'content-type': 'application/x-tar' });
    const text = await readText(r);
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
      if (msg.error || msg.errorDetail)
        throw new DockerEngineError(
          `Docker daemon ${this.host}: load failed: ${msg.errorDetail?.message ?? msg.error}`,
          500,
        );
      if (msg.stream?.trim()) loaded.push(msg.stream.trim());
    }
    return loaded;
  }

  /** Gives an image (by ID) the name `NAME:TAG` (`POST /images/{id}/tag`); a tag that named another image moves to it. */
  async tagImage(id: string, name: string): Promise<void> {
    const colon = name.lastIndexOf(':');
    if (colon <= name.lastIndexOf('/')) throw new Error(`cannot tag ${id} as "${name}": expected NAME:TAG`);
    const q = `repo=${encodeURIComponent(name.slice(0, colon))}&tag=${encodeURIComponent(name.slice(colon + 1))}`;
    (await this.call('POST', `/images/${encodeURIComponent(id)}/tag?${q}`)).resume();
  }

  /**
   * Removes a name (`repo:tag`: the image goes too when it was its last name) or, with `force`, an image
   * by ID with every name it has (`DELETE /images/{name}`). An absent one is not an error.
   */
  async removeImage(name: string, options: { force?: boolean } = {}): Promise<void> {
    try {
      const path = `/images/${name.split('/').map(encodeURIComponent).join('/')}${options.force ? '?force=1' : ''}`;
      (await this.call('DELETE', path)).resume();
    } catch (e) {
      if (!(e instanceof DockerEngineError && e.status === 404)) throw e;
    }
  }

  /** Nothing is pooled: each call opens its own connection. */
  async close(): Promise<void> {}
}
