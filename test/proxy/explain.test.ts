import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sluice } from '../helpers/sluice-cli.js';

test('sluice policy explain --action fetch answers as the cache decides, naming the flow rule', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-explain-'));
  try {
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      [
        'upstreams: {docker.io: {}}',
        'flows:',
        '  - images: ["docker.io/library/*", "docker.io/konard/hive-mind*"]',
        '    tags: {exclude: ["*-rc*"]}',
        '    platforms: [linux/amd64]',
        '  - name: no-community',
        '    images: ["docker.io/**"]',
        '    deny: true',
        '',
      ].join('\n'),
    );
    const ok = await sluice(['policy', 'explain', '-c', cfg, '--action', 'fetch', 'nginx:1']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /fetch: ALLOWED/);
    assert.match(ok.stdout, /docker\.io\/library\/nginx:1 is approved by flow rule 1 \(docker\.io\/library\/\*\)/);
    assert.match(ok.stdout, /platforms: linux\/amd64/);
    const hive = await sluice([
      'policy',
      'explain',
      '-c',
      cfg,
      '--action',
      'fetch',
      'docker.io/konard/hive-mind-dind:2',
    ]);
    assert.equal(hive.code, 0);
    const rc = await sluice(['policy', 'explain', '-c', cfg, '--action', 'fetch', '--json', 'nginx:1-rc1']);
    assert.equal(rc.code, 1);
    const [d] = JSON.parse(rc.stdout) as { allowed: boolean; rule: number; ruleName: string; reason: string }[];
    assert.equal(d!.allowed, false);
    assert.equal(d!.rule, 2);
    assert.equal(d!.ruleName, 'no-community');
    const other = await sluice(['policy', 'explain', '-c', cfg, '--action', 'fetch', 'ghcr.io/a/b:1']);
    assert.equal(other.code, 1);
    assert.match(other.stdout, /no flow rule matches \(note: no upstream ghcr\.io is configured/);
    const mixed = await sluice(['policy', 'explain', '-c', cfg, '--action', 'pull,fetch', 'nginx:1']);
    assert.equal(mixed.code, 1);
    assert.equal(mixed.stderr.trim().split('\n').length, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
