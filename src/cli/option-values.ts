import { InvalidArgumentError, Option, type Command } from 'commander';
import { canZstd, type CompressFormat } from '../copy/compress.js';
import { parsePlatform, type Platform } from '../oci/platform.js';

// Parsers for option values. They throw commander's InvalidArgumentError, which commander turns
// into one line naming the option and a non-zero exit (any other error would end in a stack trace).

/** `true|false` (also 1/0, yes/no), for `--flag=VALUE`. */
export function boolValue(v: string): boolean {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new InvalidArgumentError(`expected true or false, got "${v}"`);
}

/** A whole number ≥ 0 (`--retry-times`). */
export function countValue(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new InvalidArgumentError(`expected a whole number of 0 or more, got "${v}"`);
  return Number(v);
}

/** A whole number ≥ 1 (`--jobs`). */
export function positiveValue(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a whole number of 1 or more, got "${v}"`);
  return n;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  // One letter means binary units, as docker --memory and skopeo's size flags take them.
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** A byte count ≥ 1: `5242880`, `512k`, `5m`/`5MiB` (binary) or `5MB` (decimal). */
export function sizeValue(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a size in bytes such as 5242880, 512k, 5MiB or 5MB, got "${v}"`);
  }
  return n;
}

/** `os/arch[/variant]`, collected when repeated. */
export function platformValue(v: string, prev: Platform[] = []): Platform[] {
  try {
    return [...prev, parsePlatform(v)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** `gzip|zstd|none`; zstd is refused on a Node.js without a zstd compressor. */
export function compressFormatValue(v: string): CompressFormat {
  if (v !== 'gzip' && v !== 'zstd' && v !== 'none')
    throw new InvalidArgumentError(`expected gzip, zstd or none, got "${v}"`);
  if (v === 'zstd' && !canZstd()) {
    throw new InvalidArgumentError(
      `zstd needs Node.js 22.15 or later (this is ${process.version}, whose zlib has no zstd compressor); use gzip or none`,
    );
  }
  return v;
}

const boolFlags = new WeakMap<Command, Set<string>>();

/**
 * Adds a boolean flag written as skopeo takes it: `--flag` alone means true, `--flag=false`
 * (or =true, =1, =0) sets it. Commander's optional values would swallow the next argument
 * (`--tls-verify SRC DST`), so the flag is a plain switch and `=VALUE` is rewritten before parsing.
 * `--flag true|false` as a separate word, which older Sluice documented, is still understood.
 * The value is undefined when the flag is not given.
 */
export function addBoolFlag(cmd: Command, flag: `--${string}`, description: string): Command {
  let flags = boolFlags.get(cmd);
  if (!flags) {
    flags = new Set();
    boolFlags.set(cmd, flags);
    const known = flags;
    const parse = cmd.parseOptions.bind(cmd);
    cmd.parseOptions = (args: string[]) => parse(rewriteBoolFlags(cmd, known, args));
  }
  flags.add(flag);
  cmd.addOption(new Option(flag, description));
  cmd.addOption(new Option(`--no-${flag.slice(2)}`).hideHelp());
  return cmd;
}

function rewriteBoolFlags(cmd: Command, flags: Set<string>, args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!flags.has(name)) {
      out.push(arg);
      continue;
    }
    let value: boolean;
    if (eq > 0) {
      const text = arg.slice(eq + 1);
      try {
        value = boolValue(text);
      } catch (e) {
        cmd.error(`error: option '${name}' argument '${text}' is invalid. ${(e as Error).message}`, {
          code: 'commander.invalidArgument',
        });
      }
    } else if (/^(true|false)$/i.test(args[i + 1] ?? '')) {
      value = boolValue(args[++i]!);
    } else {
      value = true;
    }
    out.push(value ? name : `--no-${name.slice(2)}`);
  }
  return out;
}

/** Prints commander's own errors (unknown option, bad value) as the one `sluice: …` line every failure uses. */
export function sluiceErrors(cmd: Command): Command {
  return cmd.configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'sluice: ')) });
}
