import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { lazySchemaCompilers } from '../../src/registry/schema-compilers.js';

// The registry's Fastify app gets its schema compilers on first use (issue 22): none of its routes has a
// schema, and ajv with fast-json-stringify is about 110 files. A route that has one still works as before.

const loadedCache = createRequire(import.meta.url).cache;
const ajvLoaded = (): boolean => Object.keys(loadedCache).some((f) => f.includes('/node_modules/ajv/'));

test('lazySchemaCompilers() loads ajv only for a route with a schema, which then validates and serializes', async (t) => {
  const app = Fastify({ schemaController: lazySchemaCompilers() });
  t.after(() => app.close());
  app.get('/plain', async () => ({ ok: true }));
  await app.ready();
  assert.equal((await app.inject({ url: '/plain' })).json().ok, true);
  assert.equal(ajvLoaded(), false, 'an app without schemas does not load ajv');

  const typed = Fastify({ schemaController: lazySchemaCompilers() });
  t.after(() => typed.close());
  typed.post(
    '/typed',
    {
      schema: {
        body: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 5 } } },
        response: { 200: { type: 'object', properties: { name: { type: 'string' } } } },
      },
    },
    async (req) => ({ ...(req.body as object), secret: 'not in the response schema' }),
  );
  const bad = await typed.inject({ method: 'POST', url: '/typed', payload: { name: 'too long a name' } });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /body\/name must NOT have more than 5 characters/);
  const good = await typed.inject({ method: 'POST', url: '/typed', payload: { name: 'abc' } });
  assert.equal(good.statusCode, 200);
  assert.deepEqual(good.json(), { name: 'abc' }, 'the response schema drops what it does not name');
  assert.equal(ajvLoaded(), true);
});
