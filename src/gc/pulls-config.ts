import { hostname } from 'node:os';
import { z } from 'zod';
import { isDuration } from '../config/duration.js';
import { NODE_NAME } from './pulls.js';

/** `storage.gc.pulls`: recording when each tag and manifest was last pulled (retention and eviction read it). */
export const pullsSchema = z
  .object({
    /** Record pull times at all. */
    enabled: z.boolean().default(true),
    /** How often a node writes the pull times it gathered; a node killed before a flush loses at most this much. */
    flush: z.string().refine(isDuration, 'expected a duration such as 5s, 30s, 1m').default('30s'),
    /** This node's name in the pull files (`_nodes/<node>.json`); default: from the host name. Unique per node. */
    node: z
      .string()
      .regex(NODE_NAME, 'expected lowercase letters, digits and dashes, starting with a letter or digit, at most 64')
      .optional(),
    /** False keeps pull times in memory only: for a node whose storage keys can only read. */
    write: z.boolean().default(true),
  })
  .strict();

/** The validated `storage.gc.pulls` block. */
export type PullsConfig = z.infer<typeof pullsSchema>;

/**
 * A node name from a host name: lowercased, every other character a dash, at most 64, starting with a letter
 * or digit (`Build-Host.example.com` becomes `build-host-example-com`); `node` when nothing usable is left.
 */
export function nodeNameFrom(host: string = hostname()): string {
  const name = host
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 64);
  return NODE_NAME.test(name) ? name : 'node';
}
