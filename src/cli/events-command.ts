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
        const state = r.disabled ? 'disabled' : r.failingSince ? `failing since ${r.failingSince}: ${r.lastError ?? ''}` : 'ok';
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
    .option('--node <name>', "the node whose journal is replayed (default: this node's, notifications.journal.node)")
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
      const { nodeName } = await import('../events/notifier.js');
      const { endpointFilter } = await import('../events/filter.js');
      const { sendEvent } = await import('../events/endpoint.js');
      const journal = new Journal(driverFor(config), f.node ?? nodeName(n), { maxEvents: Number.MAX_SAFE_INTEGER });
      await journal.open();
      const filter = endpointFilter(endpoint);
      let after = journal.seqAt(since) - 1;
      let sent = 0;
      for (;;) {
        const batch = await journal.read(after, 100);
        if (batch.length === 0) break;
        for (const e of batch) {
          after = e.seq;
          if (Date.parse(e.timestamp) < since || !filter(e)) continue;
          try {
            await sendEvent(endpoint, e, n.events.includereferences);
          } catch (err) {
            fail(`replay stopped after ${sent} events: event ${e.id}: ${(err as Error).message}`);
          }
          sent++;
        }
      }
      process.stdout.write(`replayed ${sent} events to ${endpoint.name}\n`);
    });
}
