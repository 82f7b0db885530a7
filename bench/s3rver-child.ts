// s3rver in its own process for the benchmark: files under argv[2], listening
// on 127.0.0.1 port 0, announcing its URL on stdout.
import S3rver from 's3rver';

const directory = process.argv[2];
if (!directory) throw new Error('usage: s3rver-child.ts DIR');

const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true });
const addr = (await server.run()) as { port: number };
console.log(`s3rver listening on http://127.0.0.1:${addr.port}`);

// A bench child holds nothing worth a graceful close, and close() would wait
// for idle keep-alive sockets: exit at once.
process.on('SIGTERM', () => process.exit(0));
