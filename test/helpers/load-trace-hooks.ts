import { appendFileSync } from 'node:fs';

// Module hooks for load-trace.ts: they run in the loader's thread, so they append to the file themselves.

/** Records every file an `import` resolves to, one per line, in $SLUICE_TEST_LOAD_TRACE. */
export async function resolve(
  specifier: string,
  context: { parentURL?: string },
  next: (specifier: string, context: { parentURL?: string }) => Promise<{ url: string }>,
): Promise<{ url: string }> {
  const r = await next(specifier, context);
  const out = process.env['SLUICE_TEST_LOAD_TRACE'];
  if (out && r.url.startsWith('file:')) appendFileSync(out, `${new URL(r.url).pathname}\n`);
  return r;
}
