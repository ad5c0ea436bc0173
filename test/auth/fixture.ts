import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createRobot } from '../../src/auth/robots.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

/** The users every access-control test knows; passwords are long so they cannot appear in logs by chance. */
export const USERS = {
  alice: 'alice-pw-7f3c2a91d0',
  bob: 'bob-pw-0c9e44b1a2',
  carol: 'carol-pw-55aa12ff0e',
} as const;

/** The issue's example policy, plus a catalog rule and immutable release tags. */
export const EXAMPLE_ACCESS = {
  groups: { devs: ['alice', 'carol'] },
  sets: {
    official: ['docker.io/library/*'],
    approved: ['docker.io/konard/hive-mind', 'docker.io/konard/hive-mind-dind'],
  },
  readonly: ['frozen/**'],
  rules: [
    { name: 'immutable releases', repos: ['team-a/**:v*'], who: ['*'], deny: ['overwrite'] },
    { repos: ['team-a/**'], who: ['group:devs', 'robot:builder'], allow: ['pull', 'push', 'overwrite'] },
    { repos: ['$user/**'], who: ['authenticated'], allow: ['pull', 'push', 'delete', 'overwrite'] },
    { repos: ['@official', '@approved', 'public/**', 'frozen/**'], who: ['*'], allow: ['pull'] },
    { repos: ['docker.io/**'], who: ['*'], deny: ['pull', 'push'] },
    { repos: ['**'], who: ['authenticated'], allow: ['list'] },
  ],
};

/** Writes an htpasswd file with bcrypt entries in Apache's `$2y$` spelling. */
export async function writeHtpasswd(path: string, users: Record<string, string>): Promise<void> {
  const lines = Object.entries(users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4).replace(/^\$2b\$/, '$2y$')}`);
  await writeFile(path, lines.join('\n') + '\n');
}

/** A registry with users, robots and the example policy. */
export interface AuthFixture {
  reg: TestRegistry;
  dir: string;
  robotsPath: string;
  /** Tokens of the robots made for the test, by name. */
  robots: Record<string, string>;
  close(): Promise<void>;
}

/** Starts a registry with htpasswd users, a `builder` robot (and an expired `old` one) and the example policy. */
export async function startAuthRegistry(
  opts: {
    access?: unknown;
    auth?: Record<string, unknown>;
    audit?: unknown;
    root?: string;
    logger?: unknown /** Other top-level config keys (http, ...). */;
    config?: Record<string, unknown>;
  } = {},
): Promise<AuthFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-auth-'));
  const htpasswd = join(dir, 'htpasswd');
  await writeHtpasswd(htpasswd, USERS);
  const robotsPath = join(dir, 'robots.json');
  const robots: Record<string, string> = {};
  robots.builder = (await createRobot(robotsPath, 'builder')).token;
  robots.old = (await createRobot(robotsPath, 'old', new Date(Date.now() - 60_000))).token;
  const cfg: Record<string, unknown> = {
    ...(opts.config ?? {}),
    auth: { htpasswd: { realm: 'sluice-test', path: htpasswd }, robots: { path: robotsPath }, ...(opts.auth ?? {}) },
    access: opts.access ?? EXAMPLE_ACCESS,
  };
  // An audit path of '' means: a file in the fixture's directory.
  if (opts.audit)
    cfg.audit = (opts.audit as { path?: string }).path === '' ? { path: join(dir, 'audit.jsonl') } : opts.audit;
  const reg = await startRegistry(cfg, opts.root);
  return {
    reg,
    dir,
    robotsPath,
    robots,
    close: async () => {
      await reg.close();
      await rm(dir, { recursive: true, force: true });
      if (opts.root) await rm(opts.root, { recursive: true, force: true });
    },
  };
}

/** A Basic Authorization header. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Decodes a JWT's payload without verifying it (for assertions on what was granted). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
