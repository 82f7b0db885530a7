// The secondary's record handling over real lmdb: durable before the ack,
// in order within a session, stale sessions and lower epochs refused.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { RootDatabase } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { NotPrimaryError } from '../../src/core/errors.ts';
import { replicaWireVersion } from '../../src/replica/messages.ts';
import type { RecordMessage } from '../../src/replica/messages.ts';
import { SecondaryService } from '../../src/replica/secondary.ts';
import { VirtualClock } from '../../src/replica/sim/clock.ts';
import { SimObjectStore, newSimDisk } from '../../src/replica/sim/store.ts';
import { LmdbSecondaryDurable } from '../../src/replica/state.ts';
import { FencedError, StaleSessionError } from '../../src/replica/target.ts';

const dirs: string[] = [];
const roots: RootDatabase[] = [];

afterEach(async () => {
  for (const r of roots.splice(0)) await r.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function openService(dir?: string): Promise<{ service: SecondaryService; dir: string; root: RootDatabase }> {
  const path = dir ?? (await mkdtemp(join(tmpdir(), 'lookahead-sec-')));
  if (dir === undefined) dirs.push(path);
  const root = open({ path: join(path, 'meta'), maxDbs: 64 });
  roots.push(root);
  const clock = new VirtualClock();
  const store = new SimObjectStore(newSimDisk(), { admit: async () => ({ hit: true }), committed: () => {} }, clock);
  const service = new SecondaryService({ durable: new LmdbSecondaryDurable(root), store, clock, primaryUrl: 'http://p:9000' });
  store.setHooks(service.hooks());
  await service.start();
  return { service, dir: path, root };
}

function message(session: number, msgId: number, add: Array<[number, string]>, remove: number[] = [], epoch = 1): RecordMessage {
  return { v: replicaWireVersion, epoch, from: 'p', session, msgId, add: add.map(([id, name]) => ({ id, name })), remove };
}

describe('SecondaryService', () => {
  it('an acked record message survives a restart (durable before the ack)', async () => {
    const a = await openService();
    const { session } = await a.service.openSession('p', 1);
    const ack = await a.service.applyRecord(message(session, 1, [[1, 'k/b/x'], [2, 'p/b/logs/']]));
    expect(ack).toMatchObject({ msgId: 1, duplicate: false, recordSize: 2 });
    await a.service.applyRecord(message(session, 2, [[3, 'k/b/y']], [1]));
    await a.root.close();
    roots.splice(roots.indexOf(a.root), 1);
    const b = await openService(a.dir);
    expect(b.service.recordNames().sort()).toEqual(['k/b/y', 'p/b/logs/']);
    const info = await b.service.openSession('p', 1);
    expect(info.lastMsgId).toBe(2);
    expect(info.session).toBe(session + 1);
    expect(info.entries.map((e) => e.id).sort()).toEqual([2, 3]);
  });

  it('a retried message is acked as a duplicate and not applied again', async () => {
    const { service } = await openService();
    const { session } = await service.openSession('p', 1);
    await service.applyRecord(message(session, 1, [[1, 'k/b/x']]));
    await service.applyRecord(message(session, 2, [], [1]));
    // A late retry of message 1 must not bring id 1 back.
    const ack = await service.applyRecord(message(session, 1, [[1, 'k/b/x']]));
    expect(ack.duplicate).toBe(true);
    expect(service.recordSize).toBe(0);
  });

  it('a message of an older session is refused', async () => {
    const { service } = await openService();
    const first = await service.openSession('p', 1);
    await service.openSession('p', 1);
    await expect(service.applyRecord(message(first.session, 1, [[1, 'k/b/x']]))).rejects.toBeInstanceOf(StaleSessionError);
    expect(service.recordSize).toBe(0);
  });

  it('a sender with a lower epoch is fenced', async () => {
    const { service } = await openService();
    const { session } = await service.openSession('p', 3);
    await expect(service.applyRecord(message(session, 1, [[1, 'k/b/x']], [], 2))).rejects.toBeInstanceOf(FencedError);
    await expect(service.openSession('old', 1)).rejects.toBeInstanceOf(FencedError);
  });

  it('refuses client writes with an error naming the primary', async () => {
    const { service } = await openService();
    const err = await service.hooks().admit({ kind: 'put', bucket: 'b', key: 'k' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotPrimaryError);
    expect((err as NotPrimaryError).headers['x-amz-lookahead-primary']).toBe('http://p:9000');
  });
});
