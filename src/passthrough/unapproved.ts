import { formatReference } from '../oci/reference.js';
import type { DaemonImage } from '../transport/docker-engine.js';
import { parseTaggedName } from '../transport/docker-names.js';

/** How to take back what a load put into the target without approval. */
export interface Undo {
  /** Tags the load moved to an image not approved under them: pointed back at the image they named before (`[tag, id]`). */
  restore: [string, string][];
  /** Tags that did not exist before and name an image not approved under them: removed (the image stays if it has other names). */
  untag: string[];
  /** Images that were not in the target before and were not approved at all: removed with every name they have. */
  remove: string[];
}

/** A RepoTag in one spelling (`busybox:1` and `docker.io/library/busybox:1` are one tag); a tag Sluice cannot read stays as written. */
function tagKey(tag: string): string {
  try {
    return formatReference(parseTaggedName(tag));
  } catch {
    return tag;
  }
}

/**
 * Compares the target's images before and after a load with what was approved (normalized tag → image
 * ID). A `docker save` archive names its own images and tags, and the daemon that wrote it may be
 * hostile or may have changed meanwhile, so whatever the load added or moved beyond the approved tags
 * is taken back: new images are removed, moved tags point where they pointed before.
 */
export function unapprovedChanges(before: DaemonImage[], after: DaemonImage[], approved: Map<string, string>): Undo {
  const had = new Map<string, string>();
  for (const image of before) for (const t of image.repoTags) had.set(tagKey(t), image.id);
  const known = new Set(before.map((i) => i.id));
  const approvedIds = new Set(approved.values());
  const undo: Undo = { restore: [], untag: [], remove: [] };
  for (const image of after) {
    const unwanted = !known.has(image.id) && !approvedIds.has(image.id);
    if (unwanted) undo.remove.push(image.id);
    for (const t of image.repoTags) {
      const key = tagKey(t);
      if (approved.get(key) === image.id || had.get(key) === image.id) continue;
      const previous = had.get(key);
      if (previous !== undefined) undo.restore.push([t, previous]);
      // Removing the image takes its names along.
      else if (!unwanted) undo.untag.push(t);
    }
  }
  return undo;
}
