// The multipart calls s3rver 3.7.1 lacks and Distribution's s3 driver needs (ListMultipartUploads, ListParts,
// UploadPartCopy, AbortMultipartUpload), answered from s3rver's own upload folders: a bench harness, so that
// Distribution can push at all. Sluice's driver sends none of them.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** What of s3rver's filesystem store the calls need. */
export interface S3rverStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function sendXml(res: ServerResponse, body: string): void {
  const bytes = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
  res.writeHead(200, { 'content-type': 'application/xml', 'content-length': bytes.length }).end(bytes);
}

async function uploadsOf(
  store: S3rverStore,
  bucket: string,
): Promise<{ dir: string; id: string; key: string; initiated: Date }[]> {
  const root = store.getResourcePath(bucket, undefined, 'uploads');
  const ids = await readdir(root).catch(() => [] as string[]);
  const out = [];
  for (const id of ids) {
    const dir = join(root, id);
    const key = await readFile(join(dir, 'key'), 'utf8').catch(() => undefined);
    if (key !== undefined) out.push({ dir, id, key, initiated: (await stat(dir)).birthtime });
  }
  return out;
}

async function listParts(dir: string): Promise<{ n: number; size: number; etag: string; modified: Date }[]> {
  const parts = [];
  for (const name of await readdir(dir)) {
    if (!/^\d+$/.test(name)) continue;
    const st = await stat(join(dir, name));
    parts.push({
      n: Number(name),
      size: st.size,
      etag: (await readFile(join(dir, `${name}.md5`), 'utf8').catch(() => '')).trim(),
      modified: st.mtime,
    });
  }
  return parts.sort((a, b) => a.n - b.n);
}

/** Copies bytes `[first, last]` of an object into a part file, with the md5 s3rver keeps beside each part. */
async function copyPart(
  store: S3rverStore,
  source: string,
  range: string | undefined,
  partFile: string,
): Promise<string> {
  const src = decodeURIComponent(source.replace(/^\//, '').split('?')[0]!);
  const slash = src.indexOf('/');
  const file = store.getResourcePath(src.slice(0, slash), src.slice(slash + 1), 'object');
  const m = range ? /^bytes=(\d+)-(\d+)$/.exec(range) : null;
  const md5 = createHash('md5');
  const input = createReadStream(file, m ? { start: Number(m[1]), end: Number(m[2]) } : {});
  input.on('data', (c) => md5.update(c as Buffer));
  await pipeline(input, createWriteStream(partFile));
  const etag = md5.digest('hex');
  await writeFile(`${partFile}.md5`, etag);
  return etag;
}

async function handle(store: S3rverStore, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://s3');
  const q = url.searchParams;
  const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
  const key = decodeURIComponent(rest.join('/'));
  if (req.method === 'GET' && !key && q.has('uploads')) {
    const prefix = q.get('prefix') ?? '';
    const ups = (await uploadsOf(store, bucket)).filter((u) => u.key.startsWith(prefix));
    const items = ups
      .map(
        (u) =>
          `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
      )
      .join('');
    sendXml(
      res,
      `<ListMultipartUploadsResult xmlns="${XMLNS}"><Bucket>${bucket}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`,
    );
    return true;
  }
  const uploadId = q.get('uploadId');
  if (!key || !uploadId) return false;
  const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  if (req.method === 'GET') {
    const parts = await listParts(dir);
    const items = parts
      .map(
        (p) =>
          `<Part><PartNumber>${p.n}</PartNumber><LastModified>${p.modified.toISOString()}</LastModified><ETag>"${p.etag}"</ETag><Size>${p.size}</Size></Part>`,
      )
      .join('');
    sendXml(
      res,
      `<ListPartsResult xmlns="${XMLNS}"><Bucket>${bucket}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId><PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>${parts.at(-1)?.n ?? 0}</NextPartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>${items}</ListPartsResult>`,
    );
    return true;
  }
  const source = req.headers['x-amz-copy-source'];
  if (req.method === 'PUT' && typeof source === 'string' && q.has('partNumber')) {
    req.resume();
    const range = req.headers['x-amz-copy-source-range'];
    const etag = await copyPart(
      store,
      source,
      typeof range === 'string' ? range : undefined,
      join(dir, String(Number(q.get('partNumber')))),
    );
    sendXml(
      res,
      `<CopyPartResult xmlns="${XMLNS}"><LastModified>${new Date().toISOString()}</LastModified><ETag>"${etag}"</ETag></CopyPartResult>`,
    );
    return true;
  }
  if (req.method === 'DELETE') {
    await rm(dir, { recursive: true, force: true });
    res.writeHead(204).end();
    return true;
  }
  return false;
}

/** Puts the missing calls in front of s3rver's own request handler on `server`. */
export function addMultipartCalls(server: Server, store: S3rverStore): void {
  const s3rver = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(store, req, res).then(
      (done) => {
        if (!done) for (const h of s3rver) h.call(server, req, res);
      },
      (e: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(e.message);
      },
    );
  });
}
