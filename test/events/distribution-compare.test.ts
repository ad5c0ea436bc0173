import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { makeImage, writeOciLayout } from '../helpers/images.js';
import { startEventReceiver } from '../helpers/event-receiver.js';
import { inspectRaw, scratch, skopeoCopy, startDistribution } from '../helpers/clients.js';
import { needTools } from '../helpers/tools.js';
import { digestOf } from '../../src/oci/digest.js';

type Json = Record<string, unknown>;

/**
 * An event with what necessarily differs between two registries taken out: ids, times, ports and hosts
 * (the URL keeps its path). Everything else must be equal, field by field.
 */
function comparable(e: Json): Json {
  const target = { ...(e['target'] as Json) };
  if (typeof target['url'] === 'string') target['url'] = new URL(target['url']).pathname;
  const request = e['request'] as Json | undefined;
  return {
    keys: Object.keys(e).sort(),
    action: e['action'],
    target,
    request: request && {
      method: request['method'],
      useragent: request['useragent'],
      keys: Object.keys(request).sort(),
    },
    actor: e['actor'],
    sourceKeys: Object.keys(e['source'] as Json).sort(),
  };
}

/** Events in a comparable order: each registry's own order, which the same client steps make the same. */
function sorted(events: Json[]): Json[] {
  return events.map(comparable).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

test('Distribution 2.8.2 and Sluice send the same events for the same skopeo pushes, pulls, mounts and deletes', async (t) => {
  if (!needTools(t, 'skopeo', 'docker-registry')) return;
  const receiver = await startEventReceiver();
  t.after(() => receiver.close());
  const { dir, cleanup } = await scratch('sluice-events-');
  t.after(cleanup);
  const endpoint = { name: 'ci', url: `${receiver.url}/distribution`, timeout: '2s', threshold: 5, backoff: '100ms' };
  const dist = await startDistribution(join(dir, 'dist'), [
    `notifications: ${JSON.stringify({ events: { includereferences: true }, endpoints: [endpoint] })}`,
  ]);
  t.after(() => dist.stop());
  const sluice = await startRegistry({
    notifications: { events: { includereferences: true }, endpoints: [{ ...endpoint, url: `${receiver.url}/sluice` }] },
  });
  t.after(() => sluice.close());

  const img = await makeImage({ layers: [{ 'a.txt': 'one\n' }, { 'b.txt': 'two\n' }], label: 'compare' });
  const layout = join(dir, 'layout');
  await writeOciLayout(layout, [{ tag: 'v1', image: img }]);
  for (const [i, host] of [dist.host, sluice.host].entries()) {
    await skopeoCopy(`oci:${layout}:v1`, `docker://${host}/team/app:v1`);
    // A second repository: skopeo mounts the layers it finds in the first.
    await skopeoCopy(`docker://${host}/team/app:v1`, `docker://${host}/team/other:v1`);
    await skopeoCopy(`docker://${host}/team/app:v1`, `oci:${join(dir, `out-${i}`)}:v1`);
    const digest = digestOf(await inspectRaw(`docker://${host}/team/other:v1`));
    const del = await fetch(`http://${host}/v2/team/other/manifests/${digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
  }
  const count = (path: string) =>
    receiver.deliveries.filter((d) => d.path.endsWith(path)).flatMap((d) => d.json['events'] as Json[]);
  const deadline = Date.now() + 20_000;
  while (
    Date.now() < deadline &&
    (count('/distribution').length === 0 || count('/distribution').length !== count('/sluice').length)
  ) {
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let late deliveries in, then compare.
  await new Promise((r) => setTimeout(r, 1500));
  const fromDist = count('/distribution');
  const fromSluice = count('/sluice');
  assert.ok(fromDist.length >= 10, `Distribution sent ${fromDist.length} events`);
  const line = (e: Json) => {
    const c = comparable(e) as { action: string; target: Json; request?: Json };
    return `${c.action} ${String(c.request?.['method'])} ${String(c.target['repository'])} ${String(c.target['tag'] ?? '-')} ${String(c.target['digest'] ?? '-').slice(7, 19)} ${String(c.target['mediaType'] ?? '-')}`;
  };
  if (process.env['EVENTS_DEBUG'])
    console.log(['distribution:', ...fromDist.map(line), 'sluice:', ...fromSluice.map(line)].join('\n'));
  assert.deepEqual(sorted(fromSluice), sorted(fromDist));
  // Every envelope holds one event, as Distribution's do; the media type is Distribution 3's name (docs/events.md).
  for (const d of receiver.deliveries) assert.equal((d.json['events'] as Json[]).length, 1);
  const types = new Set(receiver.deliveries.map((d) => `${d.path.split('/').pop()} ${d.headers['content-type']}`));
  assert.deepEqual([...types].sort(), [
    'distribution application/vnd.docker.distribution.events.v1+json',
    'sluice application/vnd.docker.distribution.events.v2+json',
  ]);
});
