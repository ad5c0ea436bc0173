import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isDuration, parseDuration } from '../config/duration.js';
import { fileError } from './file-errors.js';
import { FileWatch } from './file-watch.js';

export { ROBOT_PREFIX } from '../policy/types.js';

/** A robot account as stored: only the SHA-256 of its token is kept. */
export interface RobotRecord {
  name: string;
  sha256: string;
  created: string;
  expires?: string;
}

interface RobotFile {
  version: 1;
  robots: RobotRecord[];
}

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Counts token comparisons, so tests can see unknown robots take the same path. */
export const robotStats = { compares: 0 };

/** Parses `30d`, `12h`, `90m`, `3600s` or an ISO date into an expiry time. */
export function parseExpiry(text: string, now = Date.now()): Date {
  // A bare number is left to Date (a year), not read as seconds.
  if (isDuration(text) && !/^\d+(?:\.\d+)?$/.test(text)) return new Date(now + parseDuration(text));
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new Error(`"${text}" is not a duration (30d, 12h) or a date`);
  return d;
}

async function readRobotFile(path: string): Promise<RobotFile> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as RobotFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, robots: [] };
    throw e;
  }
}

/** Creates a robot and returns its token, which is shown once and never stored. */
export async function createRobot(
  path: string,
  name: string,
  expires?: Date,
): Promise<{ token: string; record: RobotRecord }> {
  if (!NAME.test(name)) throw new Error(`robot name "${name}" must be lower-case letters, digits and . _ -`);
  const file = await readRobotFile(path);
  if (file.robots.some((r) => r.name === name)) throw new Error(`robot ${name} already exists in ${path}`);
  const token = `sluice_${randomBytes(32).toString('base64url')}`;
  const record: RobotRecord = { name, sha256: sha256(token).toString('hex'), created: new Date().toISOString() };
  if (expires) record.expires = expires.toISOString();
  file.robots.push(record);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
  return { token, record };
}

/** Removes a robot; returns false when there was none by that name. */
export async function deleteRobot(path: string, name: string): Promise<boolean> {
  const file = await readRobotFile(path);
  const before = file.robots.length;
  file.robots = file.robots.filter((r) => r.name !== name);
  if (file.robots.length === before) return false;
  await writeFile(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  return true;
}

/** Lists robots (names and dates, never hashes). */
export async function listRobots(path: string): Promise<Omit<RobotRecord, 'sha256'>[]> {
  return (await readRobotFile(path)).robots.map(({ sha256: _h, ...rest }) => rest);
}

/** Robot accounts read from their file, re-read when it changes. */
export class RobotStore {
  private robots = new Map<string, RobotRecord>();
  private readonly file: FileWatch;
  private readonly dummy = sha256('sluice-no-such-robot');

  /** Reads the file now (a missing file is no robots yet); a folder or a broken file is an error naming `auth.robots.path`. */
  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = new FileWatch(path);
    try {
      this.load();
    } catch (e) {
      if (e instanceof SyntaxError)
        throw new Error(`auth.robots.path: ${path} is not a robot file (invalid JSON: ${e.message})`);
      throw fileError('auth.robots.path', path, e);
    }
  }

  private load(): void {
    let text: ReturnType<typeof this.file.readIfChanged>;
    try {
      text = this.file.readIfChanged();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // No file is no robots (`sluice robot create` makes it).
      this.robots.clear();
      this.file.reset();
      return;
    }
    if (text === undefined) return;
    const file = JSON.parse(text) as RobotFile;
    this.robots = new Map((file.robots ?? []).map((r) => [r.name, r]));
  }

  private refresh(): void {
    try {
      this.load();
    } catch {
      // Keep the last good copy while the file is half-written or briefly unreadable.
    }
  }

  /** Whether a robot exists and has not expired. */
  active(name: string): boolean {
    this.refresh();
    const r = this.robots.get(name);
    return r !== undefined && (r.expires === undefined || Date.parse(r.expires) > this.now());
  }

  /** A fingerprint of an active robot's token, undefined when it is gone or expired: re-created robots get a new one. */
  credential(name: string): string | undefined {
    if (!this.active(name)) return undefined;
    const r = this.robots.get(name)!;
    return createHash('sha256').update(`robot\0${name}\0${r.sha256}\0${r.created}`).digest('hex');
  }

  /** Checks a robot token in constant time; unknown and expired robots take the same path. */
  verify(name: string, token: string): boolean {
    this.refresh();
    const r = this.robots.get(name);
    const want = r ? Buffer.from(r.sha256, 'hex') : this.dummy;
    robotStats.compares++;
    const match = want.length === 32 && timingSafeEqual(sha256(token), want);
    return r !== undefined && match && (r.expires === undefined || Date.parse(r.expires) > this.now());
  }
}
