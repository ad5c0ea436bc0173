// The S3 server for the s3 workload, in a process of its own: in the bench process it would share one event loop
// with the bench's client, and its CPU (is s3rver the bottleneck?) could not be told apart.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import '../test/helpers/s3.js'; // s3rver's delimiter listing, fixed as the tests have it
import { addMultipartCalls, type S3rverStore } from './s3rver-multipart.js';

const bucket = process.argv[2] ?? 'reg';
// `--multipart`: answer the multipart calls s3rver lacks, so that Distribution can push.
const multipart = process.argv.includes('--multipart');
const dir = await mkdtemp(join(tmpdir(), 'sluice-bench-s3-'));
const server = new S3rver({
  port: 0,
  address: '127.0.0.1',
  silent: true,
  directory: dir,
  configureBuckets: [{ name: bucket }],
});
const addr = await server.run();
const s = server as unknown as { httpServer: Server; store: S3rverStore };
if (multipart) addMultipartCalls(s.httpServer, s.store);
process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${addr.port}`, bucket })}\n`);
const stop = (): void => {
  s.httpServer.closeAllConnections();
  server
    .close()
    .then(() => rm(dir, { recursive: true, force: true }))
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
