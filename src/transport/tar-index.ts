import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';

/** One member of a tar file: where its data starts in the file and how long it is. */
export interface TarMember {
  name: string;
  /** '0' regular file, '1' hard link, '2' symlink, '5' directory (POSIX typeflags). */
  type: string;
  offset: number;
  size: number;
  linkname: string;
}

/** Thrown when a file is not a tar archive Sluice can index. */
export class TarIndexError extends Error {}

const BLOCK = 512;

function cString(buf: Buffer, start: number, length: number): string {
  const slice = buf.subarray(start, start + length);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul >= 0 ? nul : slice.length).toString('utf8');
}

// Sizes over 8 GiB use GNU base-256: the high bit of the first byte is set.
function numeric(buf: Buffer, start: number, length: number): number {
  const field = buf.subarray(start, start + length);
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = cString(buf, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === numeric(header, 148, 8);
}

// Pax records are "LEN key=value\n"; only path, linkpath and size matter here.
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const len = parseInt(data.subarray(i, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/**
 * Lists the members of an uncompressed tar file by reading only its headers. An archive on disk can
 * be seeked, so each member can later be streamed as a byte range: one pass, flat memory, and no
 * re-reading the archive from the start for every blob.
 */
export async function indexTar(path: string): Promise<TarMember[]> {
  const fh = await open(path, 'r');
  try {
    const members: TarMember[] = [];
    let pos = 0;
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const header = await readAt(fh, pos, BLOCK);
      if (header.length < BLOCK) {
        if (header.length === 0 && members.length > 0) break; // some writers omit the end blocks
        throw new TarIndexError(`${path}: truncated tar archive at byte ${pos}`);
      }
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header))
        throw new TarIndexError(`${path}: not a tar archive (bad header checksum at byte ${pos})`);
      const type = String.fromCharCode(header[156]!) || '0';
      let size = numeric(header, 124, 12);
      const dataStart = pos + BLOCK;
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        const data = await readAt(fh, dataStart, size);
        if (type === 'x') pax = parsePax(data);
        else if (type === 'L') longName = cString(data, 0, data.length);
        else if (type === 'K') longLink = cString(data, 0, data.length);
        pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }
      const ustar = cString(header, 257, 6) === 'ustar';
      const prefix = ustar ? cString(header, 345, 155) : '';
      let name = cString(header, 0, 100);
      if (prefix) name = `${prefix}/${name}`;
      name = pax.path ?? longName ?? name;
      const linkname = pax.linkpath ?? longLink ?? cString(header, 157, 100);
      if (pax.size !== undefined) size = parseInt(pax.size, 10);
      members.push({
        name: normalizeMemberName(name),
        type: type === '\0' ? '0' : type,
        offset: dataStart,
        size,
        linkname,
      });
      pax = {};
      longName = undefined;
      longLink = undefined;
      pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
    return members;
  } finally {
    await fh.close();
  }
}

/** `./a//b/` → `a/b`: archives spell the same path several ways. */
export function normalizeMemberName(name: string): string {
  let n = posix.normalize(name);
  if (n.startsWith('./')) n = n.slice(2);
  if (n.endsWith('/')) n = n.slice(0, -1);
  return n === '.' ? '' : n;
}

/** Follows hard and symbolic links (docker save links identical layers) to the member that holds the data. */
export function resolveMember(members: Map<string, TarMember>, name: string): TarMember | undefined {
  let current = members.get(normalizeMemberName(name));
  for (let hops = 0; current && hops < 16; hops++) {
    if (current.type === '0' || current.type === '7') return current;
    if (current.type === '2')
      current = members.get(normalizeMemberName(posix.join(posix.dirname(current.name), current.linkname)));
    else if (current.type === '1') current = members.get(normalizeMemberName(current.linkname));
    else return undefined;
  }
  return undefined;
}
