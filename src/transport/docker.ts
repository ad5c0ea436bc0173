import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { watchRate, type MinRate } from './min-rate.js';
import { digestOf, digestTag, isDigest, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseDescriptor, parseManifest } from '../oci/manifest.js';
import { isTag } from '../oci/name.js';
import { MANIFEST_MEDIA_TYPES, MediaType } from '../oci/mediatypes.js';
import { parseReference, type Reference } from '../oci/reference.js';
import type { TransportOptions } from './options.js';
import { apiHost, errorFrom, header, readBody, readJson, RegistryClient, RegistryError } from './registry-client.js';
import type { ImageDestination, ImageSource, PutManifestOptions, RawManifest, RegistryLocation } from './transport.js';
import { sliceStream } from './slice.js';
import type { ReadLimit } from './bounded.js';

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** Parses the part after `docker://`; a reference without tag or digest means `:latest`, as skopeo has it. */
export function parseDockerReference(rest: string): Reference {
  const ref = parseReference(rest);
  if (!ref.tag && !ref.digest) ref.tag = 'latest';
  return ref;
}

function describeRef(ref: Reference): string {
  return `docker://${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The referrers a registry listed that are descriptors at all (a digest, a size); the rest name nothing to copy. */
function validDescriptors(list: unknown): Descriptor[] {
  const out: Descriptor[] = [];
  for (const [i, v] of (Array.isArray(list) ? list : []).entries()) {
    try {
      out.push(parseDescriptor(v, `referrers[${i}]`));
    } catch {
      // skipped: the copy brings along what it can verify
    }
  }
  return out;
}

function encodeRepo(repo: string): string {
  return repo.split('/').map(encodeURIComponent).join('/');
}

/** Reads images from a registry over the distribution API. */
export class RegistrySource implements ImageSource {
  readonly description: string;
  readonly location: RegistryLocation;
  private readonly client: RegistryClient;
  private topDigest?: Digest;

  private readonly minRate?: MinRate;

  constructor(
    readonly ref: Reference,
    opts: TransportOptions,
  ) {
    this.description = describeRef(ref);
    this.location = { registry: apiHost(ref.registry), repository: ref.repository };
    this.client = new RegistryClient(apiHost(ref.registry), [`repository:${ref.repository}:pull`], opts);
    if (opts.minRate) this.minRate = opts.minRate;
  }

  private get repoPath(): string {
    return `/v2/${encodeRepo(this.ref.repository)}`;
  }

  /** Fetches manifest bytes by tag or digest; undefined on 404. A bound refuses by Content-Length, then stops reading past it. */
  private async fetchManifest(reference: string, limit?: ReadLimit): Promise<RawManifest | undefined> {
    const res = await this.client.send({
      method: 'GET',
      path: `${this.repoPath}/manifests/${encodeURIComponent(reference)}`,
      headers: { accept: ACCEPT },
    });
    if (res.statusCode === 404) {
      const err = await errorFrom(res, `${this.description}: manifest ${reference}`);
      if (err.code === 'MANIFEST_UNKNOWN' || err.code === 'NAME_UNKNOWN' || !err.code) return undefined;
      throw err;
    }
    if (res.statusCode !== 200) throw await errorFrom(res, `${this.description}: manifest ${reference}`);
    const bytes = await readBody(res, `${this.description}: manifest ${reference}`, 'manifest', limit);
    const algorithm = isDigest(reference) ? parseDigest(reference).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (isDigest(reference) && digest !== reference)
      throw new Error(`${this.description}: manifest ${reference} arrived with digest ${digest}`);
    const contentType = header(res, 'content-type')?.split(';')[0]?.trim();
    let mediaType: string;
    try {
      mediaType = parseManifest(bytes, contentType).mediaType;
    } catch {
      mediaType = contentType ?? MediaType.OciManifest;
    }
    return { bytes, mediaType, digest };
  }

  async getManifest(digest?: Digest, limit?: ReadLimit): Promise<RawManifest> {
    const reference = digest ?? this.topDigest ?? this.ref.digest ?? this.ref.tag!;
    const m = await this.fetchManifest(reference, limit);
    if (!m) throw new RegistryError(`${this.description}: manifest ${reference} not found`, 404, 'MANIFEST_UNKNOWN');
    // Later calls for the top manifest must see the same bytes even if the tag moves meanwhile.
    if (!digest && !this.topDigest) this.topDigest = m.digest;
    return m;
  }

  async getBlob(descriptor: Descriptor): Promise<Readable> {
    const res = await this.client.send({ method: 'GET', path: `${this.repoPath}/blobs/${descriptor.digest}` });
    if (res.statusCode !== 200) throw await errorFrom(res, `${this.description}: blob ${descriptor.digest}`);
    if (!this.minRate) return res.body;
    // Counted on the way through: the watch destroys the body when it drips, and the pipeline passes that on.
    const arrived = watchRate(res.body, this.minRate, `${this.description}: blob ${descriptor.digest}`);
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        arrived(chunk.length);
        done(null, chunk);
      },
    });
    // The reader sees the body's failure (a TooSlowError among them) as the counted stream's.
    pipeline(res.body, counted).catch(() => undefined);
    return counted;
  }

  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `${this.repoPath}/tags/list`;
    while (path) {
      const res = await this.client.send({ method: 'GET', path });
      if (res.statusCode !== 200) throw await errorFrom(res, `${this.description}: tags`);
      const doc = await readJson<{ tags?: unknown }>(res, `${this.description}: tags`, 'tags');
      // A registry's list is outside input: what is not a tag names nothing a copy could use.
      if (Array.isArray(doc.tags)) tags.push(...(doc.tags as unknown[]).filter((t): t is string => isTag(t as string)));
      const link = header(res, 'link');
      const next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
      path = next ? this.client.resolve(next) : undefined;
    }
    return tags;
  }

  async listReferrers(subject: Digest, limit?: ReadLimit): Promise<Descriptor[]> {
    const res = await this.client.send({
      method: 'GET',
      path: `${this.repoPath}/referrers/${subject}`,
      headers: { accept: MediaType.OciIndex },
    });
    if (res.statusCode === 200) {
      const doc = JSON.parse(
        (await readBody(res, `${this.description}: referrers of ${subject}`, 'referrers', limit)).toString('utf8'),
      ) as { manifests?: unknown };
      return validDescriptors(doc.manifests);
    }
    await res.body.dump();
    if (res.statusCode !== 404 && res.statusCode !== 405 && res.statusCode !== 400) {
      throw new RegistryError(`${this.description}: referrers of ${subject}: HTTP ${res.statusCode}`, res.statusCode);
    }
    // The referrers tag schema of registries without the API: an index under `sha256-<hex>`.
    const fallback = await this.fetchManifest(digestTag(subject), limit);
    if (!fallback) return [];
    try {
      const m = parseManifest(fallback.bytes);
      return m.kind === 'index' ? m.manifests : [];
    } catch {
      return [];
    }
  }

  getTaggedManifest(tag: string, limit?: ReadLimit): Promise<RawManifest | undefined> {
    return this.fetchManifest(tag, limit);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Writes images to a registry: HEAD before upload, cross-repository mounts, monolithic or chunked uploads. */
export class RegistryDestination implements ImageDestination {
  readonly description: string;
  readonly location: RegistryLocation;
  readonly tag?: string;
  private readonly client: RegistryClient;

  constructor(
    readonly ref: Reference,
    private readonly opts: TransportOptions,
  ) {
    this.description = describeRef(ref);
    this.location = { registry: apiHost(ref.registry), repository: ref.repository };
    if (ref.tag) this.tag = ref.tag;
    this.client = new RegistryClient(apiHost(ref.registry), [`repository:${ref.repository}:pull,push`], opts);
  }

  private get repoPath(): string {
    return `/v2/${encodeRepo(this.ref.repository)}`;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const res = await this.client.send({ method: 'HEAD', path: `${this.repoPath}/blobs/${descriptor.digest}` });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw new RegistryError(
      `${this.description}: HEAD blob ${descriptor.digest}: HTTP ${res.statusCode}`,
      res.statusCode,
    );
  }

  async mountBlob(descriptor: Descriptor, fromRepository: string): Promise<boolean> {
    const q = `mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(fromRepository)}`;
    const res = await this.client.send({
      method: 'POST',
      path: `${this.repoPath}/blobs/uploads/?${q}`,
      scopes: [`repository:${fromRepository}:pull`],
    });
    if (res.statusCode === 201) {
      await res.body.dump();
      return true;
    }
    if (res.statusCode === 202) {
      // The registry opened an ordinary upload instead; cancel it, the engine uploads.
      await res.body.dump();
      const loc = header(res, 'location');
      if (loc)
        await this.client.send({ method: 'DELETE', path: this.client.resolve(loc) }).then(
          (r) => r.body.dump(),
          () => undefined,
        );
      return false;
    }
    await res.body.dump();
    return false;
  }

  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    const what = `${this.description}: upload of ${descriptor.digest}`;
    const start = await this.client.send({ method: 'POST', path: `${this.repoPath}/blobs/uploads/` });
    if (start.statusCode !== 202) {
      body.destroy();
      throw await errorFrom(start, what);
    }
    await start.body.dump();
    let location = header(start, 'location');
    if (!location) throw new Error(`${what}: registry sent no upload location`);
    location = this.client.resolve(location);
    const chunk = this.opts.chunkSize ?? 0;
    if (descriptor.size > 0 && chunk > 0 && descriptor.size > chunk) {
      let offset = 0;
      for await (const part of sliceStream(body, chunk, descriptor.size)) {
        const end = offset + part.size - 1;
        const res = await this.client.send({
          method: 'PATCH',
          path: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(part.size),
            'content-range': `${offset}-${end}`,
          },
          body: part.stream,
        });
        if (res.statusCode !== 202) throw await errorFrom(res, what);
        await res.body.dump();
        location = this.client.resolve(header(res, 'location') ?? location);
        offset = end + 1;
      }
    } else if (descriptor.size > 0) {
      const res = await this.client.send({
        method: 'PATCH',
        path: location,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
        body,
      });
      if (res.statusCode !== 202) throw await errorFrom(res, what);
      await res.body.dump();
      location = this.client.resolve(header(res, 'location') ?? location);
    } else {
      body.resume();
    }
    const url = new URL(location);
    url.searchParams.set('digest', descriptor.digest);
    const done = await this.client.send({
      method: 'PUT',
      path: url.toString(),
      headers: { 'content-length': '0' },
      body: Buffer.alloc(0),
    });
    if (done.statusCode !== 201) throw await errorFrom(done, what);
    await done.body.dump();
  }

  async putManifest(manifest: RawManifest, tag?: string, _options?: PutManifestOptions): Promise<void> {
    const reference = tag ?? manifest.digest;
    const res = await this.client.send({
      method: 'PUT',
      path: `${this.repoPath}/manifests/${encodeURIComponent(reference)}`,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
    });
    if (res.statusCode !== 201) throw await errorFrom(res, `${this.description}: manifest ${reference}`);
    await res.body.dump();
    const got = header(res, 'docker-content-digest');
    if (got && got !== manifest.digest)
      throw new Error(`${this.description}: registry stored manifest ${reference} as ${got}, not ${manifest.digest}`);
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Opens `docker://HOST/REPO[:TAG|@DIGEST]` for reading. */
export async function openRegistrySource(rest: string, opts: TransportOptions): Promise<RegistrySource> {
  return new RegistrySource(parseDockerReference(rest), opts);
}

/** Opens `docker://HOST/REPO[:TAG|@DIGEST]` for writing. */
export async function openRegistryDestination(rest: string, opts: TransportOptions): Promise<RegistryDestination> {
  return new RegistryDestination(parseDockerReference(rest), opts);
}
