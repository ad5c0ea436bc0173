import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { inWindow } from '../../src/gc/config.js';
import { takeLease } from '../../src/gc/lease.js';
import { S3Driver } from '../../src/storage/s3.js';
import { testS3 } from '../helpers/registry.js';
import type { S3Options } from '../../src/storage/s3.js';

test('storage.gc accepts the documented example and fills its defaults', () => {
  const { config } = validateConfig({
    storage: {
      filesystem: { rootdirectory: '/tmp/x' },
      gc: { enabled: true, interval: '1h', grace: '24h', window: '22:00-04:00', deleteuntagged: true },
    },
  });
  assert.deepEqual(config.storage.gc, {
    enabled: true,
    interval: '1h',
    grace: '24h',
    window: '22:00-04:00',
    deleteuntagged: true,
    dryrun: false,
    collector: 'auto',
  });
});

test('storage.gc refuses an unknown key and a malformed window', () => {
  assert.throws(() => validateConfig({ storage: { gc: { graze: '1h' } } }), /graze/);
  assert.throws(
    () => validateConfig({ storage: { gc: { window: '1-5' } } }),
    /expected a UTC window such as 01:00-05:00/,
  );
});

test('inWindow() handles a window that wraps past midnight', () => {
  const at = (h: number) => new Date(Date.UTC(2026, 11, 7, h, 30));
  assert.equal(inWindow('22:00-04:00', at(23)), true);
  assert.equal(inWindow('22:00-04:00', at(3)), true);
  assert.equal(inWindow('22:00-04:00', at(12)), false);
  assert.equal(inWindow('01:00-05:00', at(5)), false);
  assert.equal(inWindow(undefined, at(12)), true);
});

test('takeLease() on S3 without conditional writes collects only on the node configured as the collector', async (t) => {
  const driver = new S3Driver((await testS3()).config(`gc-lease-${Date.now()}`) as unknown as S3Options);
  t.after(() => driver.destroy());
  const auto = await takeLease(driver, 'auto', 60_000);
  assert.match('refused' in auto ? auto.refused : '', /no conditional writes.*storage\.gc\.collector: true/);
  assert.ok(!('refused' in (await takeLease(driver, true, 60_000))));
  assert.match(JSON.stringify(await takeLease(driver, false, 60_000)), /not the collector/);
});
