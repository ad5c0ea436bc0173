import type { Config } from '../config/schema.js';
import { ruleLabel } from '../policy/evaluate.js';
import type { StorageDriver } from '../storage/driver.js';

/**
 * Refuses to start a writing node whose access rules make tags immutable (`deny: [overwrite]`) on S3 storage
 * that ignores conditional writes: there two nodes can both create one such tag at once, the later silently
 * replacing the first. `storage.s3.immutabletags: besteffort` accepts that; the returned line is then a
 * warning to log. Returns undefined when nothing needs saying.
 */
export async function checkImmutableTags(
  config: Config,
  driver: StorageDriver,
  readOnly: boolean,
): Promise<string | undefined> {
  const s3 = config.storage.s3;
  if (!s3 || readOnly || !driver.exclusiveCreate) return undefined;
  const rules = config.access?.rules ?? [];
  const i = rules.findIndex((r) => r.deny.includes('overwrite'));
  if (i === -1) return undefined;
  if (await driver.exclusiveCreate()) return undefined;
  const rule = `${ruleLabel(i + 1, rules[i]!)} makes tags immutable (deny: [overwrite])`;
  const gap = `${driver.location ?? 'storage.s3'} does not honour conditional writes (If-None-Match: *), so two nodes on this bucket can both create one immutable tag, the later write replacing the first`;
  if (s3.immutabletags === 'besteffort')
    return `${rule}, but ${gap} (accepted: storage.s3.immutabletags is "besteffort")`;
  throw new Error(
    `${rule}, but ${gap}: set storage.s3.immutabletags: besteffort to accept that, or use a server that honours them (AWS S3, MinIO)`,
  );
}
