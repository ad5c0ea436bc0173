import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_TRUSTED_ROOT_BYTES, parseTrustedRoot, TrustedRootError, type SigstoreRoot } from './trusted-root.js';

// The I/O half of trusted roots: files read once, bounded. Verification itself never reads a file.

/** The name the public-good root goes by in config (`trust.roots`) and messages. */
export const PUBLIC_GOOD = 'public-good';

/** Where the pinned public-good trusted_root.json ships (see roots/README.md for its version). */
export const PUBLIC_GOOD_PATH = fileURLToPath(
  new URL('../../../roots/sigstore-public-good.trusted_root.json', import.meta.url),
);

/** Reads a trusted_root.json file; `name` is what messages call it. */
export function readTrustedRoot(path: string, name = path, opts: { requireSCT?: boolean } = {}): SigstoreRoot {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TrustedRootError(
      `cannot read trusted root ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  if (bytes.length > MAX_TRUSTED_ROOT_BYTES)
    throw new TrustedRootError(`${path}: ${bytes.length} bytes, over the ${MAX_TRUSTED_ROOT_BYTES}-byte bound`);
  return parseTrustedRoot(bytes, name, opts);
}

let publicGood: SigstoreRoot | undefined;

/** The public-good root shipped with Sluice, read once. */
export function publicGoodRoot(): SigstoreRoot {
  publicGood ??= readTrustedRoot(PUBLIC_GOOD_PATH, PUBLIC_GOOD);
  return publicGood;
}
