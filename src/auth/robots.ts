import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDuration, parseDuration } from '../config/duration.js';

/** The username prefix that marks a robot account in Basic credentials: `robot$builder`. */
export const ROBOT_PREFIX = 'robot$';

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
export async function createRobot(path: string, name: string, expires?: Date): Promise<{ token: string; record: RobotRecord }> {
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
  private mtime = -1;
  private readonly dummy = sha256('sluice-no-such-robot');

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.refresh();
  }

  private refresh(): void {
    let st;
    try {
      st = statSync(this.path);
    } catch {
      this.robots.clear();
      this.mtime = -1;
      return;
    }
    if (st.mtimeMs === this.mtime) return;
    const file = JSON.parse(readFileSync(this.path, 'utf8')) as RobotFile;
    this.robots = new Map(file.robots.map((r) => [r.name, r]));
    this.mtime = st.mtimeMs;
  }

  /** Whether a robot exists and has not expired. */
  active(name: string): boolean {
    this.refresh();
    const r = this.robots.get(name);
    return r !== undefined && (r.expires === undefined || Date.parse(r.expires) > this.now());
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
