import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { sluice } from '../helpers/sluice-cli.js';
import { needTools, run } from '../helpers/tools.js';

test("sluice sync runs the config's jobs (dry-run first), sluice sync status reports them; a failed job exits 1", async () => {
  const up = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-cli-'));
  try {
    const img = await makeImage({ label: 'cli' });
    await pushImage(up.url, 'library/app', '1', img);
    const cfg = join(dir, 'config.yml');
    await writeFile(
      cfg,
      [
        'storage: {filesystem: {rootdirectory: ./data}}',
        `upstreams: {docker.io: {url: "${up.url}"}}`,
        'flows: [{images: ["docker.io/library/*"]}]',
        'mirrors:',
        '  - name: app',
        '    images: [docker.io/library/app]',
        '  - name: broken',
        '    images: [docker.io/library/missing]',
        '',
      ].join('\n'),
    );
    const dry = await sluice(['sync', '-c', cfg, '--job', 'app', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /copy +docker\.io\/library\/app:1 -> docker\.io\/library\/app:1 +\(new\)/);
    const r = await sluice(['sync', '-c', cfg, '--job', 'app', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [summary] = JSON.parse(r.stdout) as { copied: string[]; requests: Record<string, number> }[];
    assert.deepEqual(summary!.copied, ['docker.io/library/app:1']);
    const all = await sluice(['sync', '-c', cfg]);
    assert.equal(all.code, 1, `the broken job must fail the run: ${all.stdout}${all.stderr}`);
    assert.match(all.stdout, /unchanged +docker\.io\/library\/app:1/);
    const status = await sluice(['sync', 'status', '-c', cfg]);
    assert.equal(status.code, 1);
    assert.match(status.stdout, /^app: ok at .*unchanged 1/m);
    assert.match(status.stdout, /^broken: FAILED/m);
    // The image landed in the config's storage: a registry on that root serves it.
    const reg = await startRegistry({}, join(dir, 'data'));
    try {
      await assertIntact(reg.url, 'docker.io/library/app', '1', img);
    } finally {
      await reg.app.close();
    }
    const bad = await sluice(['sync', '-c', cfg, '--job', 'nope']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim(), 'sluice: --job nope: no such job (jobs: app, broken)');
  } finally {
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("skopeo sync's YAML runs unchanged with sluice sync --src yaml, and lands where skopeo sync puts it", async (t) => {
  if (!needTools(t, 'skopeo')) return;
  const up = await startRegistry();
  const dst = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-yaml-'));
  try {
    const a = await makeImage({ label: 'y1' });
    const b = await makeImage({ label: 'y2' });
    await pushImage(up.url, 'library/busybox', '1.36', a);
    await pushImage(up.url, 'library/busybox', '1.37', b);
    await pushImage(up.url, 'tools/app', 'v1.2.0', a);
    await pushImage(up.url, 'tools/app', 'v2.0.0', b);
    await pushImage(up.url, 'tools/app', 'edge', b);
    const yml = join(dir, 'sync.yml');
    await writeFile(
      yml,
      [
        `${up.host}:`,
        '  images:',
        '    library/busybox: ["1.36"]',
        '  images-by-tag-regex:',
        '    tools/app: ^v1\\.',
        '  tls-verify: false',
        '',
      ].join('\n'),
    );
    const r = await sluice([
      'sync',
      '--src',
      'yaml',
      yml,
      '--dest',
      `docker://${dst.host}/mirror`,
      '--dest-tls-verify=false',
      '--state',
      join(dir, 'state'),
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Named as skopeo sync names them: the last path segment under the destination.
    await assertIntact(dst.url, 'mirror/busybox', '1.36', a);
    await assertIntact(dst.url, 'mirror/app', 'v1.2.0', a);
    for (const [repo, tag] of [
      ['mirror/busybox', '1.37'],
      ['mirror/app', 'v2.0.0'],
      ['mirror/app', 'edge'],
    ]) {
      assert.equal((await fetch(`${dst.url}/v2/${repo}/manifests/${tag}`)).status, 404, `${repo}:${tag}`);
    }
    // skopeo sync with the same file writes the same names (its own layout of the destination).
    const sk = await startRegistry();
    try {
      const s = await run('skopeo', [
        'sync',
        '--src',
        'yaml',
        '--dest',
        'docker',
        '--dest-tls-verify=false',
        yml,
        `${sk.host}/mirror`,
      ]);
      assert.equal(s.code, 0, s.stderr);
      const names = (await (await fetch(`${sk.url}/v2/_catalog`)).json()) as { repositories: string[] };
      const ours = (await (await fetch(`${dst.url}/v2/_catalog`)).json()) as { repositories: string[] };
      assert.deepEqual(ours.repositories, names.repositories);
    } finally {
      await sk.close();
    }
    // A second run: nothing moved, nothing copied.
    const again = await sluice([
      'sync',
      '--src',
      'yaml',
      yml,
      '--dest',
      `docker://${dst.host}/mirror`,
      '--dest-tls-verify=false',
      '--state',
      join(dir, 'state'),
      '--json',
    ]);
    assert.equal(again.code, 0, again.stderr);
    const runs = JSON.parse(again.stdout) as { copied: string[]; unchanged: number }[];
    assert.deepEqual(
      runs.flatMap((x) => x.copied),
      [],
    );
    assert.equal(
      runs.reduce((n, x) => n + x.unchanged, 0),
      2,
    );
  } finally {
    await up.close();
    await dst.close();
    await rm(dir, { recursive: true, force: true });
  }
});
