import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ZodError, type ZodIssue } from 'zod';
import { configSchema, type Config } from './schema.js';

/** Thrown when a config cannot be used; the message names the key. */
export class ConfigError extends Error {}

/** A loaded config and what was noticed while loading it. */
export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

function pathText(path: (string | number)[]): string {
  return path.length ? path.join('.') : '(top level)';
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function envValue(v: string): unknown {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?\d+$/.test(v)) return Number(v);
  return v;
}

/**
 * Applies environment overrides: `SLUICE_STORAGE_DELETE_ENABLED=true` (and Distribution's
 * `REGISTRY_...` spelling) sets `storage.delete.enabled`.
 */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const m = /^(?:SLUICE|REGISTRY)_([A-Z0-9_]+)$/.exec(k);
    if (!m || k === 'SLUICE_REQUIRE_CLIENTS' || k.startsWith('SLUICE_TEST')) continue;
    setPath(raw, m[1]!.toLowerCase().split('_'), envValue(v));
  }
}

function dropKeys(obj: unknown, path: (string | number)[], keys: string[]): void {
  let cur = obj as Record<string | number, unknown>;
  for (const p of path) cur = cur[p] as Record<string | number, unknown>;
  for (const k of keys) delete cur[k];
}

/** Validates a raw config object: unknown keys become warnings, invalid values an error naming the key. */
export function validateConfig(raw: unknown): LoadedConfig {
  const warnings: string[] = [];
  const input = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (let attempt = 0; attempt < 50; attempt++) {
    const r = configSchema.safeParse(input);
    if (r.success) return { config: r.data, warnings };
    const unknown = r.error.issues.filter((i): i is ZodIssue & { code: 'unrecognized_keys'; keys: string[] } => i.code === 'unrecognized_keys');
    const other = r.error.issues.filter((i) => i.code !== 'unrecognized_keys');
    if (other.length > 0) {
      const msg = other.map((i) => `${pathText(i.path)}: ${i.message}`).join('; ');
      throw new ConfigError(`invalid config: ${msg}`);
    }
    for (const i of unknown) {
      for (const k of i.keys) warnings.push(`unknown config key ${pathText([...i.path, k])} is ignored`);
      dropKeys(input, i.path, i.keys);
    }
  }
  throw new ConfigError('invalid config');
}

/** Reads a YAML config file (or none) and applies environment overrides and flag overrides. */
export async function loadConfig(
  file: string | undefined,
  overrides: { addr?: string; root?: string } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<LoadedConfig> {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config ${file}: ${(e as Error).message}`);
    }
    try {
      raw = (parseYaml(text) as Record<string, unknown>) ?? {};
    } catch (e) {
      throw new ConfigError(`config ${file} is not valid YAML: ${(e as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config ${file} must be a YAML mapping`);
  }
  applyEnv(raw, env);
  if (overrides.addr) setPath(raw, ['http', 'addr'], overrides.addr);
  if (overrides.root) setPath(raw, ['storage', 'filesystem', 'rootdirectory'], overrides.root);
  try {
    return validateConfig(raw);
  } catch (e) {
    if (e instanceof ZodError) throw new ConfigError(e.message);
    throw e;
  }
}

/** Splits `host:port`; an empty host (Distribution's `:5000`) means loopback here, never every interface. */
export function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new ConfigError(`http.addr "${addr}" must be host:port`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`http.addr "${addr}" has an invalid port`);
  return { host, port };
}
