import { setFlagsFromString } from 'node:v8';
import { quietOnClosedPipes } from './fail.js';

/** The version `--version` prints (package.json's). */
const VERSION = '0.1.0';

// `sluice --version` alone answers before the argument parser loads: CI loops and start scripts call it.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}

// undici parses HTTP with llhttp compiled to WebAssembly, and V8 compiles that module a second time with its
// optimising tier in the background: about 0.2 s of CPU and 35 MiB, which a short command also waits for at
// exit (`sluice inspect` took twice as long). A command sends few requests, and llhttp hands a layer's body
// on in large spans, so the baseline tier's parser costs little. `serve` keeps the optimising tier: it runs
// long enough to earn it.
// (The flag applies to WebAssembly compiled from here on, which is all of it: undici compiles on first use.)
if (process.argv[2] !== 'serve') setFlagsFromString('--liftoff-only');

// `sluice --help` into a pipe or file (scripts, CI logs) prints the text the full program would, without loading
// commander and every command's module; test/cli/startup.test.ts checks the two are the same. On a terminal
// commander formats it for the terminal's width.
const args = process.argv.slice(2);
if (args.length === 1 && ['--help', '-h', 'help'].includes(args[0]!) && !process.stdout.isTTY) {
  const { TOP_HELP } = await import('./top-help.js');
  process.stdout.write(TOP_HELP);
  process.exit(0);
}

quietOnClosedPipes();
const { buildProgram, COMMANDS } = await import('./commands.js');
// The program has no options of its own besides --version and --help, so the first argument names the command.
const named = process.argv[2] ?? '';
const program = await buildProgram(VERSION, COMMANDS[named] ? [named] : []);
await program.parseAsync(process.argv);
