// The raw loopback baseline: a trivial node:http server that streams
// argv[2] bytes from memory in 1 MiB chunks (honouring backpressure) for any
// GET. What a large S3 GET is compared against, measured in the same run.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

const total = Number(process.argv[2]);
if (!Number.isSafeInteger(total) || total <= 0) throw new Error('usage: raw-server.ts BYTES');
const chunkBytes = 1024 * 1024;
const chunk = randomBytes(chunkBytes);

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-length': String(total), 'content-type': 'application/octet-stream' });
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunkBytes);
      left -= n;
      if (!res.write(n === chunkBytes ? chunk : chunk.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  req.resume();
  pump();
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  console.log(`raw listening on http://127.0.0.1:${addr.port}`);
});
// close() would wait for idle keep-alive sockets; nothing to flush: exit.
process.on('SIGTERM', () => process.exit(0));
