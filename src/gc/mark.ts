import { isDigest, type Digest } from '../oci/digest.js';
import { parseManifest, referencedBlobs } from '../oci/manifest.js';
import { isRepositoryName, isTag, type RepositoryName } from '../oci/name.js';
import { limiter, mapLimited } from '../async/limit.js';
import type { StorageDriver } from '../storage/driver.js';
import {
  blobDataPath,
  repoPath,
  revisionsPath,
  tagCurrentPath,
  tagsPath,
  walkRepositoryDirs,
} from '../storage/layout.js';
import { listLinkedDigests, readLink } from '../storage/links.js';
import type { ManifestFacts, RepositoryFacts, StorageFacts, UnreadableManifest } from './facts.js';

/** Manifests bigger than this are not parsed (the registry refuses them anyway); such a live one blocks the sweep. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;
/** Storage reads in flight at once during a mark. */
const READS_AT_ONCE = 16;
const BLOBS_ROOT = 'docker/registry/v2/blobs';

/**
 * Reads what the plan needs from storage: every repository's tags, revisions and layer links, every blob,
 * and what each revision says. Manifests are content-addressed, so what one says is read once per
 * collector and reused by later passes (`known`). Names read from storage are validated before they
 * become paths: a bucket may hold anything.
 */
export async function markStorage(
  driver: StorageDriver,
  known: Map<Digest, ManifestFacts | UnreadableManifest>,
  options: { only?: RepositoryName } = {},
): Promise<StorageFacts> {
  const limit = limiter(READS_AT_ONCE);
  // One string per digest in all the facts: a blob's digest is otherwise held three times (its listing, its
  // layer link, the manifest naming it), about 90 bytes each at 100,000 blobs. Dropped when the mark ends.
  const strings = new Map<string, Digest>();
  const one = (d: Digest): Digest => {
    const s = strings.get(d);
    if (s !== undefined) return s;
    strings.set(d, d);
    return d;
  };
  const repositories: RepositoryFacts[] = [];
  // One repository alone (`sluice policy explain --action retain`): its facts, no walk and no blob listing.
  const add = (r: RepositoryFacts): void => {
    r.revisions = r.revisions.map(one);
    r.layers = r.layers.map(one);
    repositories.push(r);
  };
  if (options.only) add(await readRepository(driver, options.only, limit));
  else {
    await walkRepositoryDirs(driver, async (rel, children) => {
      if (!children.includes('_manifests') && !children.includes('_layers')) return;
      if (!isRepositoryName(rel)) return;
      add(await readRepository(driver, rel, limit));
    });
  }
  const manifests = new Map<Digest, ManifestFacts | UnreadableManifest>();
  const wanted = new Set(repositories.flatMap((r) => r.revisions));
  await mapLimited(wanted, READS_AT_ONCE, async (d) => {
    const f = known.get(d) ?? (await readManifest(driver, d, one));
    if (f === null) return;
    // An unreadable one is read again next pass: it may be a write still in progress.
    if (!('unreadable' in f)) known.set(d, f);
    manifests.set(d, f);
  });
  return { repositories, blobs: options.only ? new Set() : await listBlobs(driver, one), manifests };
}

async function readRepository(
  driver: StorageDriver,
  name: RepositoryName,
  limit: ReturnType<typeof limiter>,
): Promise<RepositoryFacts> {
  const tags = new Map<string, Digest>();
  const names = (await driver.list(tagsPath(name))).filter(isTag);
  await Promise.all(
    names.map((t) =>
      limit(async () => {
        const d = await readLink(driver, tagCurrentPath(name, t));
        if (d) tags.set(t, d);
      }),
    ),
  );
  return {
    name,
    tags,
    revisions: await listLinkedDigests(driver, revisionsPath(name)),
    layers: await listLinkedDigests(driver, `${repoPath(name)}/_layers`),
  };
}

/** What a manifest says; null when its bytes are missing. */
async function readManifest(
  driver: StorageDriver,
  d: Digest,
  one: (d: Digest) => Digest,
): Promise<ManifestFacts | UnreadableManifest | null> {
  const info = await driver.stat(blobDataPath(d));
  if (!info || info.isDirectory) return null;
  if (info.size > MANIFEST_LIMIT) return { unreadable: `${info.size} bytes, over the ${MANIFEST_LIMIT}-byte bound` };
  const bytes = await driver.getContent(blobDataPath(d));
  if (!bytes) return null;
  try {
    const m = parseManifest(bytes);
    const facts: ManifestFacts = {
      children: m.kind === 'index' ? m.manifests.map((c) => one(c.digest)) : [],
      blobs: m.kind === 'image' ? referencedBlobs(m).map((b) => one(b.digest)) : [],
    };
    if (m.subject) facts.subject = one(m.subject.digest);
    return facts;
  } catch (e) {
    return { unreadable: (e as Error).message };
  }
}

/** Every digest under `blobs/<alg>/<two hex>/<hex>`. */
async function listBlobs(driver: StorageDriver, one: (d: Digest) => Digest): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  for (const alg of await driver.list(BLOBS_ROOT)) {
    if (!/^[a-z0-9]+$/.test(alg)) continue;
    for (const prefix of await driver.list(`${BLOBS_ROOT}/${alg}`)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const hex of await driver.list(`${BLOBS_ROOT}/${alg}/${prefix}`)) {
        const d = `${alg}:${hex}`;
        if (hex.startsWith(prefix) && isDigest(d)) out.add(one(d));
      }
    }
  }
  return out;
}
