import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, pushImage } from '../helpers/images.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';
import { needTools, run } from '../helpers/tools.js';

test('sluice sync progress: bars on a terminal, one line per image when piped, nothing with --json', async (t) => {
  const up = await startRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-sync-progress-'));
  try {
    await pushImage(
      up.url,
      'library/app',
      '1',
      await makeImage({ layers: [{ 'a.txt': 'a' }, { 'b.txt': 'b' }], label: 'p1' }),
    );
    await pushImage(up.url, 'library/app', '2', await makeImage({ label: 'p2' }));
    /** A config writing into its own storage folder, so each run below copies everything. */
    const config = async (name: string, mirrors = '[{name: app, images: [docker.io/library/app]}]') => {
      const file = join(dir, `${name}.yml`);
      await writeFile(
        file,
        [
          `storage: {filesystem: {rootdirectory: ./${name}}}`,
          `upstreams: {docker.io: {url: "${up.url}"}}`,
          'flows: [{images: ["docker.io/library/*"]}]',
          `mirrors: ${mirrors}`,
          '',
        ].join('\n'),
      );
      return file;
    };

    const piped = await sluice(['sync', '-c', await config('piped')]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(
      piped.stderr,
      /^app: \[[12]\/2\] copied docker\.io\/library\/app:1 \(blobs: 3 sent [\d.]+ k?B, 0 mounted, 0 already there\)$/m,
    );
    assert.match(piped.stderr, /^app: \[[12]\/2\] copied docker\.io\/library\/app:2 \(blobs: 2 sent/m);
    assert.ok(!piped.stderr.includes(`${String.fromCharCode(27)}[`), 'no escape sequences in a pipe');
    assert.doesNotMatch(piped.stderr, /\[[█░]+\]/, 'no bars in a pipe');
    assert.match(piped.stdout, /^ {2}copy +docker\.io\/library\/app:1 -> docker\.io\/library\/app:1 +\(new\)$/m);
    const unchanged = await sluice(['sync', '-c', await config('piped')]);
    assert.match(unchanged.stderr, /^app: \[[12]\/2\] unchanged docker\.io\/library\/app:2$/m);

    const json = await sluice(['sync', '-c', await config('json'), '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.stderr, '');
    assert.equal((JSON.parse(json.stdout) as { copied: string[] }[])[0]!.copied.length, 2);

    if (!needTools(t, 'script')) return;
    // script(1) gives sluice a pseudo-terminal: bars instead of lines.
    const tty = await run(
      'script',
      ['-qec', `${process.execPath} ${SLUICE_BIN} sync -c ${await config('tty')}`, '/dev/null'],
      { env: { COLUMNS: '160', TERM: 'xterm' } },
    );
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /job app\s+\[[█░]+\] 100% 2\/2 images/, 'a job bar that reaches all images');
    assert.match(tty.stdout, /docker\.io\/library\/app:[12]\s+\[[█░]+\]/, 'a bar for the image being copied');
    assert.doesNotMatch(tty.stdout, /^app: \[\d\/\d\]/m, 'no per-image lines on a terminal');
    assert.match(tty.stdout, /copied 2, followed 0, unchanged 0/);

    // Two jobs side by side share one set of bars: a line each at its final count, both summaries printed.
    const two = await run(
      'script',
      [
        '-qec',
        `${process.execPath} ${SLUICE_BIN} sync -c ${await config('two', '[{name: one, images: [docker.io/library/app], tags: {include: ["1"]}}, {name: two, images: [docker.io/library/app], prefix: again}]')}`,
        '/dev/null',
      ],
      {
        env: { COLUMNS: '160', TERM: 'xterm' },
      },
    );
    assert.equal(two.code, 0, two.stdout);
    assert.match(two.stdout, /job one\s+\[[█░]+\] 100% 1\/1 images/);
    assert.match(two.stdout, /job two\s+\[[█░]+\] 100% 2\/2 images/);
    assert.match(
      two.stdout,
      /job one:[\s\S]*copied 1, followed 0[\s\S]*job two:[\s\S]*copied 2, followed 0/,
      "each job's lines in job order",
    );
  } finally {
    await up.close();
    await rm(dir, { recursive: true, force: true });
  }
});
