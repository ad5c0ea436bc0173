// Loaded into every test process (scripts/run-tests.mjs passes it with --import): a server that leaves a
// promise rejection unhandled or throws from a callback would die in production, so a test process that
// sees one stops at once with a non-zero exit, which fails its file whatever the tests themselves asserted.
function die(kind: string, err: unknown): never {
  process.stderr.write(
    `\n${kind} in a test process (a server must never leave one):\n${(err as Error)?.stack ?? String(err)}\n`,
  );
  process.exit(70);
}
process.on('unhandledRejection', (err) => die('unhandledRejection', err));
process.on('uncaughtException', (err) => die('uncaughtException', err));
