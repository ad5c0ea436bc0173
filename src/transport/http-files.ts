import type { Readable } from 'node:stream';
import { Agent, interceptors, request, type Dispatcher } from './undici-core.js';
import type { LayoutFiles } from './layout-files.js';
import { readBody } from './registry-client.js';

/** An OCI layout served by a static web server, read with plain GETs (and HEADs for sizes): read-only. */
export class HttpFiles implements LayoutFiles {
  private readonly base: string;
  private readonly agent: Agent;
  private readonly dispatcher: Dispatcher;

  /** `url` is the layout's folder; `tlsVerify: false` accepts any certificate. */
  constructor(
    readonly where: string,
    opts: { tlsVerify?: boolean } = {},
  ) {
    this.base = where.endsWith('/') ? where : `${where}/`;
    this.agent = new Agent({ connect: { rejectUnauthorized: opts.tlsVerify !== false } });
    // Static hosting often redirects (to a CDN, or a folder to its trailing slash).
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  private async get(path: string, method: 'GET' | 'HEAD'): Promise<Dispatcher.ResponseData | undefined> {
    const url = new URL(path, this.base).toString();
    const res = await request(url, { method, dispatcher: this.dispatcher });
    if (res.statusCode === 200) return res;
    await res.body.dump();
    // Static servers and buckets answer 403 as well as 404 for a file that is not there.
    if (res.statusCode === 404 || res.statusCode === 403) return undefined;
    throw new Error(`${method} ${url}: HTTP ${res.statusCode}`);
  }

  async read(path: string): Promise<Buffer | undefined> {
    const res = await this.get(path, 'GET');
    // index.json and oci-layout: small documents, read within a manifest's bound (a server may send anything).
    return res ? readBody(res, new URL(path, this.base).toString(), 'manifest') : undefined;
  }

  async size(path: string): Promise<number | undefined> {
    const res = await this.get(path, 'HEAD');
    if (!res) return undefined;
    await res.body.dump();
    const n = Number(res.headers['content-length']);
    return Number.isFinite(n) ? n : undefined;
  }

  async stream(path: string): Promise<Readable> {
    const res = await this.get(path, 'GET');
    if (!res) throw Object.assign(new Error(`${new URL(path, this.base).toString()}: not found`), { code: 'ENOENT' });
    return res.body;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
