// A network link for the bench: a TCP relay on 127.0.0.1 with one-way delay and a shared bandwidth cap on
// what flows back from the target, so a workload can see an upstream as a client on a real network does
// (loopback has no latency and more bandwidth than two cores can fill). Runs as a process of its own so
// its CPU is not the bench client's: `node dist/bench/link.js TARGET_PORT MIB_PER_S DELAY_MS` prints
// `listening PORT` and relays until killed.
import { connect, createServer, type Socket } from 'node:net';

/** Bytes one direction of one connection holds before its source is paused. */
const HIGH_WATER = 4 << 20;
/** How often queued bytes are released. */
const TICK_MS = 2;

interface Pending {
  due: number;
  data: Buffer;
}

/** One direction of one connection: chunks waiting for their delay (and, downstream, the shared budget). */
class Lane {
  queue: Pending[] = [];
  queued = 0;
  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly capped: boolean,
  ) {}

  push(data: Buffer, due: number): void {
    this.queue.push({ due, data });
    this.queued += data.length;
    if (this.queued > HIGH_WATER) this.from.pause();
  }

  /** Sends what is due, at most `budget` bytes when capped; returns the bytes sent. */
  release(now: number, budget: number): number {
    let sent = 0;
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const head = this.queue[0]!;
      const room = this.capped ? budget - sent : head.data.length;
      if (room <= 0) break;
      const part = room >= head.data.length ? head.data : head.data.subarray(0, room);
      if (part === head.data) this.queue.shift();
      else head.data = head.data.subarray(room);
      this.to.write(part);
      sent += part.length;
      this.queued -= part.length;
    }
    if (this.queued <= HIGH_WATER / 2 && this.from.isPaused()) this.from.resume();
    return sent;
  }
}

const [targetPort, mibPerSecond, delayMs] = process.argv.slice(2).map(Number);
if (!targetPort || !mibPerSecond || delayMs === undefined || Number.isNaN(delayMs)) {
  process.stderr.write('usage: node dist/bench/link.js TARGET_PORT MIB_PER_S DELAY_MS\n');
  process.exit(2);
}
const bytesPerMs = (mibPerSecond * 1024 * 1024) / 1000;
const lanes = new Set<Lane>();
let rotate = 0;
let last = performance.now();
// Unused budget is not saved up beyond one tick's worth: a link has no burst credit.
setInterval(() => {
  const now = performance.now();
  let budget = Math.min((now - last) * bytesPerMs, bytesPerMs * TICK_MS * 4);
  last = now;
  const all = [...lanes];
  // Capped lanes share the budget in turn, starting at a different one each tick, so connections get fair shares.
  const capped = all.filter((l) => l.capped);
  for (let i = 0; i < capped.length && budget > 0; i++)
    budget -= capped[(rotate + i) % capped.length]!.release(now, Math.ceil(budget / (capped.length - i)));
  for (let i = 0; i < capped.length && budget > 0; i++)
    budget -= capped[(rotate + i) % capped.length]!.release(now, Math.floor(budget));
  rotate++;
  for (const l of all) if (!l.capped) l.release(now, Infinity);
}, TICK_MS).unref();

const server = createServer((client) => {
  const target = connect(targetPort, '127.0.0.1');
  const up = new Lane(client, target, false);
  const down = new Lane(target, client, true);
  lanes.add(up).add(down);
  client.on('data', (d) => up.push(d, performance.now() + delayMs));
  target.on('data', (d) => down.push(d, performance.now() + delayMs));
  const end = () => {
    lanes.delete(up);
    lanes.delete(down);
    client.destroy();
    target.destroy();
  };
  // An end is relayed after the bytes before it, so a response is never cut short.
  const endAfter = (lane: Lane, other: Socket) => () => {
    const wait = setInterval(() => {
      if (lane.queued === 0) {
        clearInterval(wait);
        other.end();
      }
    }, TICK_MS);
  };
  client.on('end', endAfter(up, target));
  target.on('end', endAfter(down, client));
  // The client gone, nothing is left to deliver; the target gone, what it sent is still delivered (above).
  client.on('error', end).on('close', end);
  target.on('error', end);
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
