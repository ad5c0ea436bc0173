import type { Config } from '../config/schema.js';

/** Prints one clear line and exits non-zero, as every command failure should. */
export function fail(message: string): never {
  process.stderr.write(`sluice: ${message}\n`);
  process.exit(1);
}

/** Reports a failure and sets the exit code without exiting, so `finally` can still remove temporary files. */
export function failed(e: unknown): void {
  process.stderr.write(`sluice: ${(e as Error).message}\n`);
  process.exitCode = 1;
}

/**
 * Makes a closed output pipe (`sluice tags … | head -1`) end the command quietly instead of with an
 * EPIPE stack trace: stdout closing stops the command (with the exit code already set), stderr closing
 * is ignored so a copy whose progress nobody reads still finishes.
 */
export function quietOnClosedPipes(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit();
    fail(`cannot write the output: ${e.message}`);
  });
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') process.exitCode = 1;
  });
}

/** Runs a command body; any failure is one line on stderr and exit 1, never a stack trace. */
export function oneLine<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
    }
  };
}

/** The config a command names, loaded as `sluice serve` would; a bad one is one line and exit 1. */
export async function configFrom(file: string | undefined): Promise<Config> {
  const { loadConfig } = await import('../config/load.js');
  try {
    return (await loadConfig(file)).config;
  } catch (e) {
    fail((e as Error).message);
  }
}
