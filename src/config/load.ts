import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z, type ZodIssue, type ZodTypeAny } from 'zod';
import { configSchema, type Config } from './schema.js';
import { resolveConfigPaths } from './paths.js';
import { allKeyPaths, keysAt, schemaAt } from './schema-walk.js';
import { closest } from './suggest.js';
import { UNIMPLEMENTED_DISTRIBUTION_KEYS, unimplementedProblem } from './unimplemented.js';

/** Thrown when a config cannot be used; the message names the key, one problem per line. */
export class ConfigError extends Error {
  /** Every problem found, each one line. */
  readonly problems: string[];

  constructor(message: string, problems: string[] = [message]) {
    super(message);
    this.problems = problems;
  }
}

/** A loaded config and what was noticed while loading it. */
export interface LoadedConfig {
  config: Config;
  warnings: string[];
}

/** Keys (dotted paths) whose values came from an environment variable or a flag, with its name. */
export type Origins = Map<string, string>;

/** How `validateConfig` reads its input. */
export interface ValidateOptions {
  /** The config file's folder: relative paths written in the file resolve against it. Without it, paths are left as they are. */
  baseDir?: string;
  /** Keys set by environment variables or flags: named in problems, and their paths stay relative to the current directory. */
  origins?: Origins;
  /**
   * The checks of later phases (flows, access rules, trust, listen address, TLS files): given the config with the
   * sections that parsed, and the raw input, they return their problems, reported with the schema's in one error.
   */
  check?: ConfigCheck;
}

/** A check beyond the schema: one line per problem, none when the config is fine. */
export type ConfigCheck = (config: Config, raw: Record<string, unknown>) => string[];

/** Makes the check for a raw config once it is read, so the check loads only the code that config needs. */
export type ConfigCheckLoader = (raw: Record<string, unknown>) => Promise<ConfigCheck>;

function pathText(path: readonly (string | number)[]): string {
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

/** An environment value typed as the key expects, so `SLUICE_AUTH_HTPASSWD_REALM=2024` stays a string. */
function envValue(v: string, target: ZodTypeAny | undefined): unknown {
  if (target instanceof z.ZodString || target instanceof z.ZodEnum) return v;
  if (target instanceof z.ZodBoolean) return v === 'true' ? true : v === 'false' ? false : v;
  if (target instanceof z.ZodNumber) return /^-?\d+(?:\.\d+)?$/.test(v) ? Number(v) : v;
  // Lists and maps are written in YAML, as Distribution reads them (`[/a.pem, /b.pem]`).
  if (target instanceof z.ZodArray || target instanceof z.ZodRecord || target instanceof z.ZodObject) {
    try {
      return parseYaml(v) as unknown;
    } catch {
      return v;
    }
  }
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (/^-?\d+$/.test(v)) return Number(v);
  return v;
}

const topLevelKeys = (): string[] => keysAt(configSchema, []);

/**
 * Whether a `REGISTRY_` variable is meant for the config: its first word is a section Sluice or
 * Distribution has, or a slip of one. Others (Kubernetes sets `REGISTRY_PORT`, `REGISTRY_SERVICE_HOST`
 * for a service named registry) are not config, and Distribution ignores them too.
 */
function aboutConfig(first: string): boolean {
  const tops = topLevelKeys();
  if (tops.includes(first)) return true;
  if ([...UNIMPLEMENTED_DISTRIBUTION_KEYS.keys()].some((k) => k.split('.')[0] === first)) return true;
  return closest(first, tops) !== undefined;
}

/**
 * Applies environment overrides: `SLUICE_STORAGE_DELETE_ENABLED=true` (and Distribution's
 * `REGISTRY_...` spelling) sets `storage.delete.enabled`. Returns which variable set which key, and
 * warnings for `REGISTRY_` variables that are not about the config.
 */
export function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { origins: Origins; warnings: string[] } {
  const origins: Origins = new Map();
  const warnings: string[] = [];
  // Sorted so that SLUICE_ wins over REGISTRY_ for the same key, whatever order the environment has.
  for (const [name, v] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (v === undefined) continue;
    const m = /^(SLUICE|REGISTRY)_([A-Z0-9_]+)$/.exec(name);
    if (!m || name === 'SLUICE_REQUIRE_CLIENTS' || name.startsWith('SLUICE_TEST')) continue;
    const path = m[2]!.toLowerCase().split('_');
    if (m[1] === 'REGISTRY' && !aboutConfig(path[0]!)) {
      warnings.push(`environment variable ${name} names no config key; ignored`);
      continue;
    }
    setPath(raw, path, envValue(v, schemaAt(configSchema, path)));
    origins.set(path.join('.'), name);
  }
  return { origins, warnings };
}

/** ` (from VAR)` when an environment variable or flag set this key, something inside it, or what holds it. */
function originNames(path: string, origins: Origins): string[] {
  const names: string[] = [];
  for (const [p, name] of origins)
    if (p === path || p.startsWith(`${path}.`) || path.startsWith(`${p}.`)) names.push(name);
  return names;
}

/** The key a misspelt one most likely meant: a near sibling, or the one key of that name in another section. */
function suggestion(parent: readonly (string | number)[], key: string): string | undefined {
  const near = closest(key, keysAt(configSchema, parent));
  if (near) return [...parent, near].join('.');
  // `addr` at the top means http.addr; `path` or `enabled` could mean too many keys to guess.
  const elsewhere = allKeyPaths(configSchema).filter((p) => p[p.length - 1]!.toLowerCase() === key.toLowerCase());
  return elsewhere.length === 1 ? elsewhere[0]!.join('.') : undefined;
}

function notes(...parts: (string | undefined)[]): string {
  const present = parts.filter((p): p is string => !!p);
  return present.length ? ` (${present.join(', ')})` : '';
}

function message(text: string): string {
  // Zod's own messages start capitalised mid-sentence; ours read as one line after the key.
  return /^(Expected|Required|Invalid|String|Number|Array|Unrecognized)\b/.test(text)
    ? text[0]!.toLowerCase() + text.slice(1)
    : text;
}

/** One line per problem, with the key it is about (to sort by). */
function problemsOf(issue: ZodIssue, origins: Origins): { key: string; text: string }[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => {
      const key = [...issue.path, k].join('.');
      const from = originNames(key, origins).map((n) => `from ${n}`);
      const unimplemented = unimplementedProblem(key);
      if (unimplemented) return { key, text: `${key}${notes(...from)}${unimplemented.slice(key.length)}` };
      const s = suggestion(issue.path, k);
      return { key, text: `unknown config key ${key}${notes(...from, s && `did you mean ${s}?`)}` };
    });
  }
  const key = issue.path.join('.');
  const from = originNames(key, origins).map((n) => `from ${n}`);
  return [{ key, text: `${pathText(issue.path)}${notes(...from)}: ${message(issue.message)}` }];
}

function formatProblems(problems: string[]): string {
  if (problems.length === 1) return `invalid config: ${problems[0]}`;
  return `invalid config (${problems.length} problems):\n${problems.map((p) => `  ${p}`).join('\n')}`;
}

/**
 * Validates a raw config object. Every unknown key (with the closest known one), every Distribution
 * key Sluice lacks and every invalid value is reported at once, one per line, in one ConfigError: a
 * typo must never start a registry that ignores what was meant.
 */
export function validateConfig(raw: unknown, opts: ValidateOptions = {}): LoadedConfig {
  const origins = opts.origins ?? new Map<string, string>();
  const input = structuredClone(raw ?? {}) as Record<string, unknown>;
  const r = configSchema.safeParse(input);
  let problems: string[] = [];
  let config: Config | undefined;
  if (r.success) config = r.data;
  else {
    // Sorted by key, so problems in one section stay together whatever order the schema checked them in.
    const found = r.error.issues
      .flatMap((i) => problemsOf(i, origins))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    problems = [...new Set(found.map((p) => p.text))];
    // The sections that parsed are still checked by the later phases, so one run reports every problem.
    const broken = new Set(
      r.error.issues.flatMap((i) =>
        i.path.length === 0 && i.code === 'unrecognized_keys' ? i.keys : [String(i.path[0] ?? '')],
      ),
    );
    const rest = configSchema.safeParse(Object.fromEntries(Object.entries(input).filter(([k]) => !broken.has(k))));
    if (rest.success) config = rest.data;
  }
  if (config && opts.baseDir)
    resolveConfigPaths(config, input, opts.baseDir, (p) => originNames(p, origins).length > 0);
  if (config && opts.check) problems.push(...opts.check(config, input).filter((p) => !problems.includes(p)));
  if (problems.length) throw new ConfigError(formatProblems(problems), problems);
  return { config: config!, warnings: [] };
}

/**
 * Reads a YAML config file (or none) and applies environment overrides and flag overrides. Relative
 * paths in the file resolve against its folder; those from variables and flags against the current one.
 */
export async function loadConfig(
  file: string | undefined,
  overrides: { addr?: string; root?: string; check?: ConfigCheck; loadCheck?: ConfigCheckLoader } = {},
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
  const { origins, warnings } = applyEnv(raw, env);
  if (overrides.addr) {
    setPath(raw, ['http', 'addr'], overrides.addr);
    origins.set('http.addr', '--addr');
  }
  if (overrides.root) {
    setPath(raw, ['storage', 'filesystem', 'rootdirectory'], overrides.root);
    origins.set('storage.filesystem.rootdirectory', '--root');
  }
  const check = overrides.loadCheck ? await overrides.loadCheck(raw) : overrides.check;
  const loaded = validateConfig(raw, {
    baseDir: file ? dirname(resolve(file)) : undefined,
    origins,
    ...(check ? { check } : {}),
  });
  return { config: loaded.config, warnings: [...warnings, ...loaded.warnings] };
}

/** Splits `host:port`; an empty host (Distribution's `:5000`) means loopback here, never every interface. */
export function parseAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  if (i < 0) throw new ConfigError(`http.addr "${addr}" must be host:port`);
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`http.addr "${addr}" has an invalid port`);
  return { host, port };
}
