// Compiles the TypeScript once and stamps dist/.built, so ensure-built.mjs knows the output is current.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', '.built'), '');
