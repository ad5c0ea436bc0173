import type { Command } from 'commander';
import { fail } from './fail.js';
import { storageConfig, type StorageFlags } from './storage-command.js';

interface ReplayFlags extends StorageFlags {
  endpoint: string;
  since: string;
  node?: string;
}

/** Registers `sluice events status` and `sluice events replay`. */
export function registerEventsCommand(program: Command): void {
  const events = program.command('events').description('the events journal and its deliveries (notifications:)');
  events
    .command('status')
    .description('per endpoint and node: delivered, pending, dead letters, dropped, failing since, last error')
    .argument('[config]', 'config file')
    .option('-c, --config <file>', 'config file')
    .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)')
    .option('--json', 'print JSON')
    .action(async (file: string | undefined, f: StorageFlags & { json?: boolean }) => {
      const config = await storageConfig(file, f);
      if (!config.notifications) fail('the config has no notifications: block');
      const { driverFor } = await import('../storage/driver-for.js');
      const { eventsStatus } = await import('../events/status.js');
      const rows = await eventsStatus(driverFor(config), config.notifications);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) process.stdout.write('no events journaled yet\n');
      for (const r of rows) {
        const state = r.disabled
          ? 'disabled'
          : r.failingSince
            ? `failing since ${r.failingSince}: ${r.lastError ?? ''}`
            : 'ok';
        const counts = `delivered ${r.delivered}, pending ${r.pending}, dead ${r.dead}, dropped ${r.dropped}`;
        process.stdout.write(`${r.endpoint} (node ${r.node}): ${counts}; ${state}\n`);
      }
    });
  events
    .command('replay')
    .description('send the journaled events since a time to one endpoint again (same ids: receivers deduplicate)')
    .argument('[config]', 'config file')
    .option('-c, --config <file>', 'config file')
    .option('--root <dir>', 'filesystem storage root (overrides storage.filesystem.rootdirectory)')
    .requiredOption('--endpoint <name>', 'the endpoint (notifications.endpoints[].name)')
    .requiredOption('--since <time>', 'an ISO time, or a duration back from now (1h)')
    .option('--node <name>', "replay only this node's journal (default: every node's on this storage, merged by time)")
    .action(async (file: string | undefined, f: ReplayFlags) => {
      const config = await storageConfig(file, f);
      const n = config.notifications;
      if (!n) fail('the config has no notifications: block');
      const endpoint = n.endpoints.find((e) => e.name === f.endpoint);
      const names = n.endpoints.map((e) => e.name).join(', ') || 'none';
      if (!endpoint) fail(`no endpoint named "${f.endpoint}" under notifications.endpoints (${names})`);
      const { parseSince } = await import('../events/status.js');
      let since: number;
      try {
        since = parseSince(f.since);
      } catch (e) {
        fail(`--since: ${(e as Error).message}`);
      }
      const { driverFor } = await import('../storage/driver-for.js');
      const { Journal } = await import('../events/journal.js');
      const { cursorAt, nodeJournals, readMerged } = await import('../events/merged.js');
      const { endpointFilter } = await import('../events/filter.js');
      const { sendEvent } = await import('../events/endpoint.js');
      const driver = driverFor(config);
      // Every node's journal on this storage, merged by time; --node keeps to one.
      let journals: InstanceType<typeof Journal>[];
      if (f.node) {
        const one = new Journal(driver, f.node, { maxEvents: Number.MAX_SAFE_INTEGER });
        await one.open();
        journals = [one];
      } else journals = await nodeJournals(driver);
      const filter = endpointFilter(endpoint);
      const cursor = cursorAt(journals, since);
      let sent = 0;
      for (;;) {
        const batch = await readMerged(journals, cursor, 100);
        if (batch.length === 0) break;
        for (const e of batch) {
          cursor.set(e.node, e.seq);
          if (Date.parse(e.timestamp) < since || !filter(e)) continue;
          try {
            await sendEvent(endpoint, e, n.events.includereferences);
          } catch (err) {
            fail(`replay stopped after ${sent} events: event ${e.id} of node ${e.node}: ${(err as Error).message}`);
          }
          sent++;
        }
      }
      process.stdout.write(`replayed ${sent} events to ${endpoint.name}\n`);
    });
}
