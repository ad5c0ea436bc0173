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
