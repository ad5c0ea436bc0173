// `node --import …/load-trace.js`: writes the path of every module the process loads (ESM imports and CJS
// requires) to the file $SLUICE_TEST_LOAD_TRACE, so a test can say what a command did not load.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

register('./load-trace-hooks.js', import.meta.url);

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const internals = Module as unknown as {
  _load: Load;
  _resolveFilename(request: string, parent: unknown, isMain: boolean): string;
};
const load = internals._load;
internals._load = function (request: string, parent: unknown, isMain: boolean): unknown {
  const out = process.env['SLUICE_TEST_LOAD_TRACE'];
  if (out) {
    const file = internals._resolveFilename(request, parent, isMain);
    if (file.startsWith('/')) appendFileSync(out, `${file}\n`);
  }
  return load.call(this, request, parent, isMain);
};
