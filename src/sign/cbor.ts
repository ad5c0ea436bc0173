// A small CBOR (RFC 8949) decoder, bounded, for COSE_Sign1 envelopes: definite lengths only (COSE requires
// deterministic encoding), nesting and sizes capped, so hostile bytes cost at most their own length. Pure.

/** A decoded CBOR value: maps keep their keys (numbers or strings) in a Map. */
export type CborValue =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | CborValue[]
  | Map<CborValue, CborValue>
  | CborTag;

/** A tagged value (tag 18 is COSE_Sign1; tag 1 an epoch time). */
export class CborTag {
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

/** Thrown for bytes that are not the CBOR this decoder accepts. */
export class CborError extends Error {
  override name = 'CborError';
}

const MAX_DEPTH = 16;
const MAX_ITEMS = 4096;

/** Decodes exactly one CBOR item filling `bytes`. */
export function decodeCbor(bytes: Uint8Array): CborValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let items = 0;
  const need = (n: number): void => {
    if (pos + n > buf.length) throw new CborError('truncated');
  };
  const arg = (info: number): number | bigint => {
    if (info < 24) return info;
    if (info === 24) {
      need(1);
      return buf[pos++]!;
    }
    if (info === 25) {
      need(2);
      pos += 2;
      return buf.readUInt16BE(pos - 2);
    }
    if (info === 26) {
      need(4);
      pos += 4;
      return buf.readUInt32BE(pos - 4);
    }
    if (info === 27) {
      need(8);
      const v = buf.readBigUInt64BE(pos);
      pos += 8;
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    throw new CborError(info === 31 ? 'indefinite lengths are not accepted' : `reserved additional info ${info}`);
  };
  const length = (info: number): number => {
    const n = arg(info);
    if (typeof n !== 'number' || n > buf.length - pos) throw new CborError('length beyond the input');
    return n;
  };
  const item = (depth: number): CborValue => {
    if (depth > MAX_DEPTH) throw new CborError('nested too deeply');
    if (++items > MAX_ITEMS) throw new CborError('too many items');
    need(1);
    const b = buf[pos++]!;
    const major = b >> 5;
    const info = b & 31;
    switch (major) {
      case 0:
        return arg(info);
      case 1: {
        const n = arg(info);
        return typeof n === 'number' ? -1 - n : -1n - n;
      }
      case 2: {
        const n = length(info);
        pos += n;
        return new Uint8Array(buf.subarray(pos - n, pos));
      }
      case 3: {
        const n = length(info);
        pos += n;
        return buf.toString('utf8', pos - n, pos);
      }
      case 4: {
        const n = length(info);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const n = length(info);
        const out = new Map<CborValue, CborValue>();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== 'number' && typeof k !== 'string') throw new CborError('map keys must be integers or text');
          if (out.has(k)) throw new CborError(`duplicate map key ${String(k)}`);
          out.set(k, item(depth + 1));
        }
        return out;
      }
      case 6: {
        const t = arg(info);
        if (typeof t !== 'number') throw new CborError('tag too large');
        return new CborTag(t, item(depth + 1));
      }
      default:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        throw new CborError(`simple or float value ${info} is not accepted`);
    }
  };
  const v = item(0);
  if (pos !== buf.length) throw new CborError('trailing bytes after the item');
  return v;
}

// Encoding of the few shapes COSE's Sig_structure needs: a text string, byte strings, an array.
function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Encodes an array of text and byte strings (COSE's Sig_structure). */
export function encodeCborArray(items: (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [head(4, items.length)];
  for (const it of items) {
    const b = typeof it === 'string' ? Buffer.from(it, 'utf8') : Buffer.from(it);
    parts.push(head(typeof it === 'string' ? 3 : 2, b.length), b);
  }
  return Buffer.concat(parts);
}
