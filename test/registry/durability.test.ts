import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeImage, pushImage } from '../helpers/images.js';
import { assertIntact } from '../helpers/oci-http.js';
import { freePort, waitForHttp } from '../helpers/clients.js';
import { SLUICE_BIN, startSluiceProcess } from '../helpers/sluice-cli.js';
import { needTools } from '../helpers/tools.js';
import { filesystemOnly } from '../helpers/registry.js';
import { blobDataPath, layerLinkPath, revisionLinkPath, tagCurrentPath } from '../../src/storage/layout.js';
import type { RepositoryName } from '../../src/oci/name.js';
import type { Digest } from '../../src/oci/digest.js';

/** One traced call: what it was, on which paths, and where in the trace it began and returned. */
interface Call {
  name: string;
  paths: string[];
  begin: number;
  end: number;
}

/**
 * Reads `strace -f -y` output into calls. With several threads a call may be split into
 * `<unfinished ...>` and `<... name resumed>` lines; its end is where it resumed.
 */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  text.split('\n').forEach((line, i) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const [, pid, rest] = m as unknown as [string, string, string];
    const resumed = /^<\.\.\. (\w+) resumed>/.exec(rest);
    if (resumed) {
      const c = open.get(pid);
      if (c) c.end = i;
      open.delete(pid);
      return;
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (!call) return;
    const [, name, args] = call as unknown as [string, string, string];
    // Paths are quoted ("...") in rename arguments and shown as fd</path> for fsync with -y.
    const paths = [...args.matchAll(/"([^"]*)"|\d+<([^>]*)>/g)]
      .map((p) => p[1] ?? p[2]!)
      .filter((p) => p.startsWith('/'));
    const c: Call = { name, paths, begin: i, end: i };
    calls.push(c);
    if (rest.includes('<unfinished ...>')) open.set(pid, c);
  });
  return calls;
}

test('blob data, manifests and links are flushed to disk before they are renamed into place, and their directories after', async (t) => {
  if (filesystemOnly(t, 'traces fsync and rename on a directory root')) return;
  if (!needTools(t, 'strace')) return;
  const root = await mkdtemp(join(tmpdir(), 'sluice-durable-'));
  const traceDir = await mkdtemp(join(tmpdir(), 'sluice-trace-'));
  const trace = join(traceDir, 'trace');
  const port = await freePort();
  const child = spawn(
    'strace',
    [
      '-f',
      '-y',
      '-qq',
      '-e',
      'trace=fsync,fdatasync,rename,renameat,renameat2',
      '-o',
      trace,
      process.execPath,
      SLUICE_BIN,
      'serve',
      '--addr',
      `127.0.0.1:${port}`,
      '--root',
      root,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/v2/`, child, 60_000);
    const img = await makeImage({ layers: [{ 'a.txt': randomBytes(300_000) }] });
    const repo = 'durable/app' as RepositoryName;
    await pushImage(url, repo, 'v1', img);
    // Stop sluice (strace's child) gracefully so the trace is complete.
    const children = (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8'))
      .trim()
      .split(/\s+/)
      .map(Number);
    for (const pid of children) process.kill(pid, 'SIGTERM');
    await Promise.race([exited, sleep(30_000, undefined, { ref: false })]);
    assert.notEqual(child.exitCode, null, `strace did not exit: ${stderr}`);

    const calls = parseTrace(await readFile(trace, 'utf8'));
    const syncs = calls.filter((c) => c.name === 'fsync' || c.name === 'fdatasync');
    const renames = calls.filter((c) => c.name.startsWith('rename'));
    const check = (rel: string) => {
      const target = join(root, rel);
      const rename = renames.find((r) => r.paths[1] === target);
      assert.ok(rename, `no rename into ${rel}; renames: ${renames.map((r) => r.paths.join(' -> ')).join('\n')}`);
      const source = rename.paths[0]!;
      assert.ok(
        syncs.some((s) => s.paths[0] === source && s.end < rename.begin),
        `${source} was not flushed before it was renamed to ${rel}\n${stderr}`,
      );
      assert.ok(
        syncs.some((s) => s.paths[0] === dirname(target) && s.begin > rename.end),
        `${dirname(target)} was not flushed after the rename into it`,
      );
    };
    // A layer (an upload moved into place), the manifest (putContent), and the links that make them visible.
    check(blobDataPath(img.layers[0]!.descriptor.digest));
    check(blobDataPath(img.config.descriptor.digest));
    check(blobDataPath(img.digest));
    check(layerLinkPath(repo, img.layers[0]!.descriptor.digest));
    check(revisionLinkPath(repo, img.digest));
    check(tagCurrentPath(repo, 'v1'));
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(root, { recursive: true, force: true });
    await rm(traceDir, { recursive: true, force: true });
  }
});

test('leftovers of a crash (old temporary files, empty blob folders) are removed at start; young ones and real data stay', async (t) => {
  if (filesystemOnly(t, "plants the filesystem driver's temporary files under a directory root")) return;
  const root = await mkdtemp(join(tmpdir(), 'sluice-durable-'));
  try {
    const first = await startSluiceProcess(root);
    const img = await makeImage();
    const repo = 'crash/app' as RepositoryName;
    try {
      await pushImage(first.url, repo, 'v1', img);
    } finally {
      await first.kill();
    }
    const at = (rel: string) => join(root, rel);
    const plant = async (rel: string, body = 'partial') => {
      await mkdir(dirname(at(rel)), { recursive: true });
      await writeFile(at(rel), body);
    };
    const hex = () => randomBytes(32).toString('hex');
    const blobFolder = (h: string) => dirname(blobDataPath(`sha256:${h}` as Digest));
    // What a crash leaves: a tag link's temporary file, a manifest's temporary file in its new blob
    // folder, and a blob folder made just before the rename that never came.
    const oldLinkTmp = `${tagCurrentPath(repo, 'v1')}.tmp-${randomUUID()}`;
    const halfBlob = blobFolder(hex());
    const halfTmp = `${halfBlob}/data.tmp-${randomUUID()}`;
    const emptyBlob = blobFolder(hex());
    await plant(oldLinkTmp);
    await plant(halfTmp);
    await mkdir(at(emptyBlob), { recursive: true });
    // The same, but young: they may belong to a write in flight, and stay.
    const youngTmp = `${layerLinkPath(repo, img.layers[0]!.descriptor.digest)}.tmp-${randomUUID()}`;
    const youngBlob = blobFolder(hex());
    await plant(youngTmp);
    await mkdir(at(youngBlob), { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    for (const p of [oldLinkTmp, halfTmp, halfBlob, emptyBlob]) await utimes(at(p), old, old);

    const second = await startSluiceProcess(root);
    try {
      const gone = async (rel: string) => (await stat(at(rel)).catch(() => null)) === null;
      for (let i = 0; i < 200 && !((await gone(oldLinkTmp)) && (await gone(halfBlob)) && (await gone(emptyBlob))); i++)
        await sleep(50);
      for (const p of [oldLinkTmp, halfTmp, halfBlob, emptyBlob]) assert.ok(await gone(p), `${p} is still there`);
      for (const p of [youngTmp, youngBlob]) assert.ok(!(await gone(p)), `${p} was removed`);
      await assertIntact(second.url, repo, 'v1', img);
    } finally {
      await second.stop();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
