// One replication core, two targets (issue 5): the primary's real write
// path (PrimaryReplicator via createPrimaryReplication, DiskObjectStore)
// replicating to S3Target on s3rver. Client writes wait for the record on
// the target on a miss, the copier drains Q to the target, and after a
// primary restart the record is read back from the target.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, systemClock } from '../../../src/core/clock.ts';
import { DiskObjectStore, openMetaDb } from '../../../src/objects/store.ts';
import { coveringNames } from '../../../src/predict/locations.ts';
import { createPrimaryReplication } from '../../../src/replica/index.ts';
import type { PrimaryReplication } from '../../../src/replica/index.ts';
import { createS3Target } from '../../../src/replica/s3/target.ts';
import type { S3Target } from '../../../src/replica/s3/target.ts';
import { putInput } from '../../objects/helpers.ts';
import type { S3Server } from './servers.ts';
import { startS3rver } from './servers.ts';

let server: S3Server;
let dataDir: string;

beforeAll(async () => {
  server = await startS3rver();
  dataDir = await mkdtemp(join(tmpdir(), 'lookahead-primary-s3-'));
});
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

interface Primary {
  repl: PrimaryReplication;
  store: DiskObjectStore;
  target: S3Target;
  close(): Promise<void>;
}

async function startPrimary(url: string): Promise<Primary> {
  const root = openMetaDb(dataDir);
  const target = createS3Target({ url, credentials: server.credentials, tagging: 'separate' });
  const repl = createPrimaryReplication({
    root,
    target,
    clock: systemClock,
    random: seededRandom(7),
    config: { site: 'primary-under-test', probeIntervalMs: 200, trimIdleMs: 60_000 },
  });
  const store = await DiskObjectStore.open({ dataDir, db: root, hooks: repl.hooks });
  await repl.start(store);
  return {
    repl,
    store,
    target,
    close: async () => {
      await repl.stop();
      await store.close();
      await root.close();
    },
  };
}

async function drained(p: Primary, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const s = p.repl.status();
    if (s.queueDepth === 0 && s.peer === 'ok') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Q not drained: ${JSON.stringify(p.repl.status())}`);
}

describe('primary replicating to a plain S3 target', () => {
  it('covers every written key in R on the target, copies the objects, survives a restart', async () => {
    const url = `s3://primary-e2e/site/@${server.endpoint}`;
    const p1 = await startPrimary(url);
    await p1.store.createBucket('photos', 'us-east-1');
    const keys = ['2026/11/30/a.jpg', '2026/11/30/b.jpg', '2026/11/30/c.jpg', 'other/x y.txt'];
    for (const key of keys) {
      await p1.store.putObject(putInput('photos', key, `data of ${key}`, { userMeta: { k: key.length.toString() }, tags: { from: 'primary' } }));
    }
    // Invariant 1 right after the acks, before any copy is certain: every
    // written key is covered by R as stored on the target.
    const view = await p1.target.readRecord();
    const names = new Set(view.entries.map((e) => e.name));
    for (const key of keys) {
      const covering = coveringNames({ kind: 'put', bucket: 'photos', key });
      expect(covering.some((n) => names.has(n)), `${key} covered by one of ${covering.join(', ')}`).toBe(true);
    }
    const status = p1.repl.status();
    expect(status.misses).toBeGreaterThan(0);
    expect(status.misses + status.hits).toBeGreaterThanOrEqual(keys.length);

    await drained(p1);
    for (const key of keys) {
      const got = await p1.target.getObject('photos', key);
      expect(got?.meta).toMatchObject({ userMeta: { k: key.length.toString() }, tags: { from: 'primary' } });
      const chunks: Buffer[] = [];
      for await (const c of got?.body ?? []) chunks.push(Buffer.from(c as Buffer));
      expect(Buffer.concat(chunks).toString()).toBe(`data of ${key}`);
    }
    await p1.store.deleteObject('photos', 'other/x y.txt');
    await drained(p1);
    expect(await p1.target.headObject('photos', 'other/x y.txt')).toBeUndefined();
    const before = (await p1.target.readRecord()).entries.map((e) => e.id).sort((a, b) => a - b);
    await p1.close();

    // Restart: R' is rebuilt from the record on the target (a new session).
    const p2 = await startPrimary(url);
    await drained(p2);
    const after = await p2.target.readRecord();
    expect(after.state.session).toBeGreaterThan(view.state.session);
    expect(after.entries.map((e) => e.id).sort((a, b) => a - b)).toEqual(before);
    expect(p2.repl.status().recordSize).toBe(before.length);
    await p2.store.putObject(putInput('photos', '2026/11/30/d.jpg', 'more'));
    await drained(p2);
    expect(await p2.target.headObject('photos', '2026/11/30/d.jpg')).toMatchObject({ size: 4 });
    await p2.close();
  });
});
