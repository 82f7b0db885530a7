// SIGKILL a writer at random moments; every reopen must find whole versions.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { seededRandom } from '../../src/core/clock.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { bodyFor } from './fixtures/crash-writer.ts';
import { readAll } from './helpers.ts';

const child = join(import.meta.dirname, 'fixtures', 'crash-writer.ts');

async function runAndKill(dataDir: string, start: number, afterMs: number): Promise<void> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, dataDir, String(start)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writer did not get going')), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('busy')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', () => reject(new Error('writer exited early')));
  });
  await new Promise((r) => setTimeout(r, afterMs));
  proc.kill('SIGKILL');
  await new Promise((r) => proc.once('exit', r));
}

it('a writer killed at any moment leaves whole versions and no leftovers', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lookahead-crash-'));
  const random = seededRandom(42);
  let lastSeq = 0;
  try {
    for (let round = 0; round < 4; round++) {
      await runAndKill(dataDir, round * 10_000_000, 100 + Math.floor(random.next() * 400));
      const db = openMetaDb(dataDir);
      const store = await DiskObjectStore.open({ dataDir, db });
      expect(await readdir(join(dataDir, 'tmp'))).toEqual([]);
      for (const key of ['k0', 'k1', 'k2']) {
        const reader = await store.openObject('crash', key).catch((err: { code?: string }) => {
          expect(err.code).toBe('NoSuchKey');
          return undefined;
        });
        if (!reader) continue;
        const data = await readAll(reader.stream());
        expect(data.length).toBe(reader.meta.size);
        expect(createHash('md5').update(data).digest('hex')).toBe(reader.meta.etag);
        const version = Number(data.readBigUInt64BE(0));
        expect(data.equals(bodyFor(version))).toBe(true);
      }
      // Every blob file left is referenced (the sweep removed the rest).
      const referenced = new Set<string>();
      for (const key of ['k0', 'k1', 'k2']) {
        const meta = await store.headObject('crash', key).catch(() => undefined);
        for (const b of meta?.blobs ?? []) referenced.add(b.id);
      }
      for (const shard of await readdir(join(dataDir, 'blobs'))) {
        for (const f of await readdir(join(dataDir, 'blobs', shard))) expect(referenced.has(f)).toBe(true);
      }
      // The writer really was writing when it died.
      expect(store.currentSeq()).toBeGreaterThan(lastSeq + 10);
      lastSeq = store.currentSeq();
      await store.close();
      await db.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}, 300_000);
