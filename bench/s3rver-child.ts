// The S3 server for the s3 workload, in a process of its own: in the bench process it would share one event loop
// with the bench's client, and its CPU (is s3rver the bottleneck?) could not be told apart.
import { startS3 } from '../test/helpers/s3.js';

const s3 = await startS3(process.argv[2] ?? 'reg');
process.stdout.write(`${JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket })}\n`);
const stop = (): void => {
  s3.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
