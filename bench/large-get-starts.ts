// 64 MiB GETs against the raw loopback server across several server starts:
// `npm run bench -- --only get64m` measures one server start, and a server's
// CPU per large GET has varied between starts (see README, "Large GETs").
// Each start: a fresh lookahead site, one 64 MiB object, then compareLargeGet
// (loadgen.ts: raw and S3 GETs alternated in pairs, server CPU per GET).
//
//   npx tsx bench/large-get-starts.ts [--starts 5] [--gets 8] [--verify-reads full|size]
//
// Prints each start's median pair ratio and server CPU per GET, then the
// median over every pair of every start.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compareLargeGet, median } from './loadgen.ts';
import { S3Http, patternStream } from './s3http.ts';
import { startLookahead, startRawServer, testAccessKey, testSecretKey } from './servers.ts';

const { values } = parseArgs({
  options: {
    starts: { type: 'string', default: '5' },
    gets: { type: 'string', default: '8' },
    'verify-reads': { type: 'string', default: 'full' },
  },
});
const bytes = 64 * 1024 * 1024;
const key = '/bench/large/get64m.bin';
const root = mkdtempSync(path.join(tmpdir(), 'large-get-starts-'));
const raw = await startRawServer(bytes);
const allPairs: number[] = [];
try {
  for (let start = 0; start < Number(values.starts); start++) {
    const server = await startLookahead({
      dataDir: mkdtempSync(path.join(root, `site${start}-`)),
      extraArgs: ['--verify-reads', values['verify-reads']!],
    });
    try {
      const client = new S3Http({ url: server.url, accessKey: testAccessKey, secretKey: testSecretKey, region: 'us-east-1' });
      await client.ensureBucket('bench');
      const pattern = randomBytes(1024 * 1024);
      await client.ok('PUT', key, { body: { length: bytes, stream: () => patternStream(pattern, bytes) } });
      const r = await compareLargeGet(client, key, `${raw.url}/`, bytes, Number(values.gets), 120, { s3: server.pid, raw: raw.pid });
      allPairs.push(...r.s3.mbPerSec.map((v, i) => v / r.raw.mbPerSec[i]!));
      console.log(
        `start ${start}: median pair ratio ${(r.medianPairRatio * 100).toFixed(0)}%, ` +
          `server CPU ${r.s3.cpuMsPerGet?.toFixed(1)} ms per GET (raw server ${r.raw.cpuMsPerGet?.toFixed(1)} ms)`,
      );
      client.close();
    } finally {
      await server.stop();
    }
  }
  console.log(`all ${allPairs.length} pairs: median ratio ${(median(allPairs) * 100).toFixed(0)}% (--verify-reads ${values['verify-reads']})`);
} finally {
  await raw.stop();
  rmSync(root, { recursive: true, force: true });
}
