import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unapprovedChanges } from '../../src/passthrough/unapproved.js';
import type { DaemonImage } from '../../src/transport/docker-engine.js';

const id = (c: string) => `sha256:${c.repeat(64)}`;
const image = (c: string, ...repoTags: string[]): DaemonImage => ({
  id: id(c),
  repoTags,
  repoDigests: [],
  size: 1,
  created: 0,
});
const approved = (pairs: [string, string][]) => new Map(pairs.map(([tag, c]) => [tag, id(c)]));

test('unapprovedChanges() leaves the approved tags and what was there before alone', () => {
  const before = [image('a', 'keep:1'), image('b')];
  const after = [image('a', 'keep:1'), image('b'), image('c', 'busybox:1', 'docker.io/library/busybox:2')];
  const undo = unapprovedChanges(
    before,
    after,
    approved([
      ['docker.io/library/busybox:1', 'c'],
      ['docker.io/library/busybox:2', 'c'],
    ]),
  );
  assert.deepEqual(undo, { restore: [], untag: [], remove: [] });
});

test('unapprovedChanges() removes a new image nobody approved, with its tags', () => {
  const undo = unapprovedChanges(
    [],
    [image('c', 'busybox:1'), image('d', 'evil:1', 'evil:2'), image('e')],
    approved([['docker.io/library/busybox:1', 'c']]),
  );
  assert.deepEqual(undo, { restore: [], untag: [], remove: [id('d'), id('e')] });
});

test('unapprovedChanges() points a tag the load moved back at the image it named before', () => {
  const before = [image('a', 'konard/secret:1')];
  const after = [image('a'), image('s', 'konard/secret:1'), image('c', 'konard/app:1')];
  const undo = unapprovedChanges(before, after, approved([['docker.io/konard/app:1', 'c']]));
  assert.deepEqual(undo, { restore: [['konard/secret:1', id('a')]], untag: [], remove: [id('s')] });
});

test('unapprovedChanges() untags an unapproved new tag of an approved image, and a tag naming the wrong approved image', () => {
  const after = [image('c', 'konard/app:1', 'konard/app:extra'), image('d', 'konard/other:1', 'konard/app:2')];
  const undo = unapprovedChanges(
    [],
    after,
    approved([
      ['docker.io/konard/app:1', 'c'],
      ['docker.io/konard/other:1', 'd'],
      ['docker.io/konard/app:2', 'c'],
    ]),
  );
  assert.deepEqual(undo, { restore: [], untag: ['konard/app:extra', 'konard/app:2'], remove: [] });
});
