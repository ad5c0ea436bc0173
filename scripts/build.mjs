// Compiles the TypeScript once and stamps dist/.built, so ensure-built.mjs knows the output is current.
// The web UI is compiled on its own (browser lib, ES modules) into dist/web/, next to its static files.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.web.json')], { cwd: root, stdio: 'inherit' });
cpSync(join(root, 'web', 'static'), join(root, 'dist', 'web'), { recursive: true });
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', '.built'), '');
