import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, nameSpellings, parseReference } from '../../src/oci/reference.js';
import { isRepositoryName, isTag } from '../../src/oci/name.js';

const D = 'sha256:' + 'a'.repeat(64);

test('references normalize Docker Hub names the way docker does', () => {
  assert.equal(formatReference(parseReference('nginx')), 'docker.io/library/nginx');
  assert.equal(formatReference(parseReference('library/nginx:1.25')), 'docker.io/library/nginx:1.25');
  assert.equal(
    formatReference(parseReference('index.docker.io/konard/hive-mind:latest')),
    'docker.io/konard/hive-mind:latest',
  );
  assert.equal(formatReference(parseReference(`nginx@${D}`)), `docker.io/library/nginx@${D}`);
  assert.equal(formatReference(parseReference(`nginx:1@${D}`)), `docker.io/library/nginx:1@${D}`);
});

test('a first component with a dot, a colon or localhost is a registry', () => {
  assert.deepEqual(parseReference('127.0.0.1:5000/team/app:v1'), {
    registry: '127.0.0.1:5000',
    repository: 'team/app',
    tag: 'v1',
  });
  assert.deepEqual(parseReference('localhost/app'), { registry: 'localhost', repository: 'app' });
  assert.deepEqual(parseReference('ghcr.io/a/b/c'), { registry: 'ghcr.io', repository: 'a/b/c' });
  assert.deepEqual(parseReference('team/app'), { registry: 'docker.io', repository: 'team/app' });
});

test('bad references are refused', () => {
  for (const bad of ['', 'UPPER', 'a/../b', 'a//b', 'nginx:', 'nginx@sha256:zz', 'nginx:bad tag', '-a/b']) {
    assert.throws(() => parseReference(bad), `${bad} should be refused`);
  }
});

test('name spellings cover the usual ways to write a name', () => {
  assert.deepEqual(nameSpellings(parseReference('nginx')), ['nginx', 'library/nginx', 'docker.io/library/nginx']);
  assert.deepEqual(nameSpellings(parseReference('konard/hive-mind')), [
    'konard/hive-mind',
    'docker.io/konard/hive-mind',
  ]);
  assert.deepEqual(nameSpellings(parseReference('127.0.0.1:5000/team/app')), ['team/app', '127.0.0.1:5000/team/app']);
});

test('repository names and tags follow the distribution grammar', () => {
  for (const ok of ['a', 'a/b', 'a-b/c_d', 'a__b', 'a.b/c--d', 'x'.repeat(255)]) assert.ok(isRepositoryName(ok), ok);
  for (const bad of [
    '',
    '..',
    '../x',
    'a/../b',
    'a/./b',
    '/a',
    'a/',
    'A',
    'a_',
    'a___b',
    'a/.b',
    'x'.repeat(256),
    'a%2fb',
  ]) {
    assert.ok(!isRepositoryName(bad), bad);
  }
  for (const ok of ['latest', 'v1.2.3', '_x', 'a'.repeat(128)]) assert.ok(isTag(ok), ok);
  for (const bad of ['', '.x', '-x', 'a'.repeat(129), 'a/b', 'a:b']) assert.ok(!isTag(bad), bad);
});
