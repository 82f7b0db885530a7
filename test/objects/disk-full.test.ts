// Metadata commits on a full disk (tmpfs; needs root to mount, skipped otherwise):
// the write fails with ENOSPC (the gateway's 503), nothing rejects unhandled,
// and the store works again once space is freed.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toWireError } from '../../src/core/errors.ts';
import { DiskObjectStore, openMetaDb } from '../../src/objects/store.ts';
import { putInput, readAll } from './helpers.ts';

async function tryMount(): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'lookahead-objects-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
}

const dir = await tryMount();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

describe.skipIf(dir === undefined)('a full disk under inline commits', () => {
  beforeAll(() => void process.on('unhandledRejection', onUnhandled));
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    if (dir) {
      execFileSync('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with ENOSPC, rejects nothing unhandled, and recovers', async () => {
    const root = openMetaDb(dir!);
    const store = await DiskObjectStore.open({ dataDir: dir!, db: root });
    try {
      await store.createBucket('full', 'us-east-1');
      await store.putObject(putInput('full', 'kept', Buffer.alloc(1000, 7)));
      await writeFile(join(dir!, 'filler'), Buffer.alloc(4 * 1024 * 1024)).catch(() => {}); // fills the disk
      let failures = 0;
      for (const size of [30_000, 60_000]) {
        try {
          await store.putObject(putInput('full', `k${size}`, Buffer.alloc(size, 1)));
        } catch (err) {
          failures++;
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
          expect(toWireError(err).code).toBe('ServiceUnavailable');
        }
      }
      expect(failures).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 50)); // let any stray rejection surface
      expect(unhandled).toEqual([]);
      await rm(join(dir!, 'filler'));
      await store.putObject(putInput('full', 'after', Buffer.alloc(50_000, 3)));
      expect((await store.headObject('full', 'after')).size).toBe(50_000);
      expect((await readAll((await store.openObject('full', 'kept')).stream())).equals(Buffer.alloc(1000, 7))).toBe(true);
    } finally {
      await store.close();
      await root.close();
    }
  });
});
