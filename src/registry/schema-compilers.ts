import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

// Fastify requires its schema compilers (ajv and fast-json-stringify, about 110 files) when an app is created,
// to compile route schemas; the registry's routes have none, and the compilers' code stayed in memory unused
// (issue 22). These builders require fastify's own compilers on first use, from fastify's own dependencies.

type Builder = (...args: unknown[]) => unknown;
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

/** A builder that requires `pkg` (a compiler selector: call it once for the builder) when first called. */
function onFirstUse(pkg: string): Builder {
  let build: Builder | undefined;
  return (...args) => {
    build ??= (fromFastify(pkg) as () => Builder)();
    return build(...args);
  };
}

/** Fastify's `schemaController` option: its default compilers, loaded only if a route has a schema. */
export function lazySchemaCompilers(): NonNullable<FastifyServerOptions['schemaController']> {
  return {
    compilersFactory: {
      buildValidator: onFirstUse('@fastify/ajv-compiler'),
      buildSerializer: onFirstUse('@fastify/fast-json-stringify-compiler'),
    } as NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>,
  };
}
