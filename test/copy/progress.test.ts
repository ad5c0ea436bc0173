import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { scratch } from '../helpers/clients.js';
import { SLUICE_BIN, sluice } from '../helpers/sluice-cli.js';
import { needTools, run } from '../helpers/tools.js';

test('progress: one line per blob when piped, bars and a total on a terminal, nothing with --quiet', async (t) => {
  const s = await scratch();
  try {
    const img = await makeImage({ layers: [{ 'a.txt': 'a' }, { 'b.txt': 'b' }], label: 'progress' });
    await writeOciLayout(join(s.dir, 'src'), [{ tag: 'v1', image: img }]);
    const blobs = [img.config, ...img.layers].map((b) => b.descriptor.digest);

    const piped = await sluice(['copy', `oci:${join(s.dir, 'src')}:v1`, `oci:${join(s.dir, 'piped')}:v1`]);
    assert.equal(piped.code, 0, piped.stderr);
    for (const d of blobs) assert.match(piped.stderr, new RegExp(`^blob ${d} .* copied$`, 'm'));
    const again = await sluice(['copy', `oci:${join(s.dir, 'src')}:v1`, `oci:${join(s.dir, 'piped')}:v1`]);
    for (const d of blobs) assert.match(again.stderr, new RegExp(`^blob ${d} .* skipped \\(already there\\)$`, 'm'));

    const quiet = await sluice(['copy', '--quiet', `oci:${join(s.dir, 'src')}:v1`, `oci:${join(s.dir, 'quiet')}:v1`]);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr + quiet.stdout, '');

    if (!needTools(t, 'script')) return;
    // script(1) gives the copy a real pseudo-terminal, so it draws bars instead of lines.
    const cmd = `${process.execPath} ${SLUICE_BIN} copy oci:${join(s.dir, 'src')}:v1 oci:${join(s.dir, 'tty')}:v1`;
    const tty = await run('script', ['-qec', cmd, '/dev/null'], { env: { COLUMNS: '120', TERM: 'xterm' } });
    assert.equal(tty.code, 0, tty.stdout);
    assert.match(tty.stdout, /total\s+\[[█░]+\] 100%/, 'a total bar that reaches 100%');
    // Bars of finished blobs are removed, so the blobs still in flight at a redraw are the ones shown.
    const named = blobs.filter((d) => new RegExp(`${d.slice(0, 19)}\\s*\\[`).test(tty.stdout));
    assert.ok(named.length > 0, 'a bar per blob in flight, named by its digest');
    assert.doesNotMatch(tty.stdout, /^blob sha256:/m, 'no per-blob log lines on a terminal');
  } finally {
    await s.cleanup();
  }
});
