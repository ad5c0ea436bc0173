import { DOCKER_HUB } from '../oci/reference.js';
import type { Mode } from './decide.js';

/** The box project's default registry allowlist for `public`. */
export const DEFAULT_REGISTRIES = [
  'docker.io',
  'ghcr.io',
  'quay.io',
  'gcr.io',
  'registry.k8s.io',
  'public.ecr.aws',
  'mcr.microsoft.com',
];

/** Where the box project mounts the host daemon's socket. */
export const DEFAULT_HOST_SOCKET = '/var/run/host-docker.sock';

/** Thrown for a setting that cannot be used; the message names the variable or flag. */
export class SettingError extends Error {}

/** The settings of one run, from flags first, then the box's variables, then the box's defaults. */
export interface PassthroughSettings {
  mode: Mode;
  registries: string[];
  images: string[];
  /** The host daemon (`unix:///var/run/host-docker.sock`). */
  from: string;
  /** Where each setting came from, for messages (`--mode`, `DIND_HOST_PASSTHROUGH`, `default`). */
  origins: { mode: string; registries: string; images: string; from: string };
}

/** Flags of the same meaning as the box's variables; undefined when not given. */
export interface PassthroughFlags {
  mode?: string;
  registries?: string;
  images?: string;
  from?: string;
}

/** Parses a mode: `off` (also `0`, `false`, `no`, empty), `public` or `all`, in any case. */
export function parseMode(text: string, origin: string): Mode {
  const v = text.trim().toLowerCase();
  if (v === '' || v === 'off' || v === '0' || v === 'false' || v === 'no') return 'off';
  if (v === 'public' || v === 'all') return v;
  throw new SettingError(`${origin}=${text}: expected off, public or all`);
}

/** Splits a space- (or comma-) separated list. */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s.length > 0);
}

/** A registry host as references name it: lower case, Docker Hub's other names as `docker.io`. */
export function normalizeRegistry(host: string): string {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^[a-z]+:\/\//, '')
    .replace(/\/.*$/, '');
  return h === 'index.docker.io' || h === 'registry-1.docker.io' ? DOCKER_HUB : h;
}

/**
 * Resolves the settings as the box's entrypoint reads its variables: a flag wins; an unset variable
 * takes the box's default. `DIND_HOST_PASSTHROUGH` set but empty means off (as the issue has it);
 * an empty registry list takes the default list, as the box's `${VAR:-default}` does.
 */
export function resolveSettings(flags: PassthroughFlags, env: NodeJS.ProcessEnv = process.env): PassthroughSettings {
  const pick = (
    flag: string | undefined,
    flagName: string,
    variable: string,
  ): { value: string | undefined; origin: string } =>
    flag !== undefined
      ? { value: flag, origin: flagName }
      : env[variable] !== undefined
        ? { value: env[variable], origin: variable }
        : { value: undefined, origin: 'default' };
  const m = pick(flags.mode, '--mode', 'DIND_HOST_PASSTHROUGH');
  const r = pick(flags.registries, '--registries', 'DIND_HOST_PASSTHROUGH_REGISTRIES');
  const i = pick(flags.images, '--images', 'DIND_HOST_PASSTHROUGH_IMAGES');
  const f = pick(flags.from, '--from', 'DIND_HOST_DOCKER_SOCK');
  const registries =
    r.value !== undefined && r.value.trim() !== '' ? splitList(r.value).map(normalizeRegistry) : DEFAULT_REGISTRIES;
  const from = f.value !== undefined && f.value.trim() !== '' ? f.value.trim() : DEFAULT_HOST_SOCKET;
  return {
    mode: m.value === undefined ? 'public' : parseMode(m.value, m.origin),
    registries: [...new Set(registries)],
    images: i.value === undefined ? [] : splitList(i.value),
    from: /^[a-z]+:\/\//.test(from) ? from : `unix://${from}`,
    origins: { mode: m.origin, registries: r.origin, images: i.origin, from: f.origin },
  };
}

/** True for an image entry that names one image exactly: a tag or digest and no glob characters. */
export function isConcrete(entry: string): boolean {
  if (/[*?[\]{}!]/.test(entry)) return false;
  if (entry.includes('@')) return true;
  const last = entry.slice(entry.lastIndexOf('/') + 1);
  return last.includes(':');
}
