// `promote --from-s3` and `rejoin --from-s3` (issue 5): failover to a plain
// S3 secondary and failback from it (src/replica/s3/failback.ts). The
// composition root of those two commands: it opens the old primary's data
// dir offline and wires the target, the store and the durable resync list.

import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { noReplication } from '../core/changes.ts';
import { replicaRequestTimeoutMs, s3StateCheckMs } from '../core/limits.ts';
import { DiskObjectStore, openMetaDb } from '../objects/store.ts';
import { FailoverState, clearReplicaSide, type ResyncMeta } from '../replica/failover/state.ts';
import { S3Access, S3Failback, promoteS3Target, s3AtRiskNamesMax, type FailbackResult } from '../replica/s3/failback.ts';
import { createS3Target } from '../replica/s3/target.ts';
import { LmdbPrimaryDurable } from '../replica/state.ts';
import { fail } from './admin-options.ts';
import { describeLocation } from './failover-commands.ts';
import { unsyncedOf } from './roles.ts';

/** Runs of the resync before giving up (each resumes the durable list). */
const rejoinAttemptsMax = 5;
/** Pause between runs after a failure (the target was unreachable). */
const rejoinRetryMs = 1000;
/** Tracked keys read per page (the set is bounded by Q's limit). */
const trackedPage = 1000;
const trackedPagesMax = 10_000;
/** Progress line refresh on a terminal. */
const progressMs = 500;

function progressLine(p: ResyncMeta): string {
  return `${p.done}/${p.total} ${p.phase}  examined ${p.examined} copied ${p.copied} deleted ${p.deleted}`;
}

export interface S3PromoteReport {
  target: string;
  role: 'primary';
  epoch: number;
  promotedAt: string;
  alreadyPromoted: boolean;
  atRisk: { count: number; names: string[]; truncated: boolean };
}

/** Failover: the target becomes the primary (clients write to it). */
export async function s3Promote(url: string, flags: { json?: boolean; all?: boolean; primary?: string }): Promise<void> {
  const target = createS3Target({ url });
  const s3 = new S3Access(url);
  try {
    const result = await promoteS3Target(target, s3, {
      ...(flags.primary ? { primary: flags.primary } : {}),
      settleMs: s3StateCheckMs + replicaRequestTimeoutMs,
      clock: systemClock,
    });
    const names = result.record.entries.map((e) => e.name);
    const shown = flags.all ? names : names.slice(0, s3AtRiskNamesMax);
    const report: S3PromoteReport = {
      target: url,
      role: 'primary',
      epoch: result.epoch,
      promotedAt: new Date(result.promotedAt).toISOString(),
      alreadyPromoted: result.alreadyPromoted,
      atRisk: { count: names.length, names: shown, truncated: shown.length < names.length },
    };
    console.log(flags.json ? JSON.stringify(report, null, 2) : formatS3Promote(report));
  } finally {
    await target.close();
    s3.close();
  }
}

function formatS3Promote(r: S3PromoteReport): string {
  const lines = [
    `${r.alreadyPromoted ? 'already promoted' : 'promoted'}: ${r.target} is the primary at epoch ${r.epoch} (since ${r.promotedAt}); repoint clients to it`,
    `at risk: ${r.atRisk.count} location(s) whose last write on the old primary may not have arrived`,
    ...r.atRisk.names.map((n) => `  ${describeLocation(n)}`),
  ];
  if (r.atRisk.truncated) lines.push(`  ... (${r.atRisk.count - r.atRisk.names.length} more: --all --json)`);
  return lines.join('\n');
}

/**
 * Failback, offline: the old primary is stopped and its data dir is brought
 * to the target's state. On success its replication state is reset to the
 * target's epoch, so `serve --role primary --secondary URL` on that dir
 * opens a new session on the target (not fenced) once clients stopped
 * writing to the target.
 */
export async function s3Rejoin(url: string, dataDir: string, flags: { json?: boolean }): Promise<void> {
  const dir = resolve(dataDir);
  await access(join(dir, 'meta')).catch(() => fail(`${dir} is not a site's data dir (no meta/): rejoin needs the old primary's data`));
  const db = openMetaDb(dir);
  const store = await DiskObjectStore.open({ dataDir: dir, db, hooks: noReplication });
  const state = new FailoverState(db);
  const target = createS3Target({ url });
  const s3 = new S3Access(url);
  const tty = process.stderr.isTTY && !flags.json;
  try {
    const failback = new S3Failback({
      target,
      access: s3,
      store,
      currentSeq: () => store.currentSeq(),
      state,
      unsynced: () => [...new Set([...unsyncedOf(db), ...trackedNames(state)])],
      clock: systemClock,
      log: (message, fields) => tty && process.stderr.write(`${message} ${JSON.stringify(fields ?? {})}\n`),
    });
    let result: FailbackResult | undefined;
    let first: FailbackResult | undefined;
    const ticker = tty ? setInterval(() => process.stderr.write(`\rresync ${progressLine(failback.progress())}`), progressMs) : undefined;
    try {
      for (let attempt = 0; attempt < rejoinAttemptsMax; attempt++) {
        result = await failback.run();
        first ??= result;
        if (result.done) break;
        await systemClock.sleep(rejoinRetryMs);
      }
    } finally {
      if (ticker) {
        clearInterval(ticker);
        process.stderr.write(`\rresync ${progressLine(failback.progress())}\n`);
      }
    }
    if (!result?.done) {
      console.error(`lookahead: rejoin --from-s3 interrupted (${result?.resync.done}/${result?.resync.total} done); run it again to resume`);
      process.exitCode = 1;
      return;
    }
    // Q, R' and the dirty set described the old arrangement and are settled
    // now; the next session on the target starts at its epoch.
    await clearReplicaSide(db, 'p');
    await new LmdbPrimaryDurable(db).setMeta({ epoch: result.epoch });
    await state.clearTracked();
    const out = { ...result, plan: first?.plan ?? result.plan, resumed: first?.resumed ?? false, promotedAt: new Date(result.promotedAt).toISOString() };
    console.log(flags.json ? JSON.stringify(out, null, 2) : formatRejoin(out));
  } finally {
    await target.close();
    s3.close();
    await store.close();
    await db.close();
  }
}

function formatRejoin(r: Omit<FailbackResult, 'promotedAt'> & { promotedAt: string }): string {
  const p = r.plan;
  const s = r.resync;
  return [
    `failback from the S3 target done (epoch ${r.epoch}, failed over at ${r.promotedAt}${r.resumed ? ', resumed' : ''})`,
    ...(p
      ? [
          `planned: ${s.planned?.record ?? 0} record location(s), ${p.changedOnTarget} key(s) changed on the target since the failover (${p.modifiedSincePromotion} modified, ${p.onlyTarget} new there, ${p.onlyLocal} gone there), ${s.planned?.peerUnsynced ?? 0} unconfirmed write(s) of this site`,
          `listed: ${p.listedTarget} key(s) on the target in ${p.listRequests} LIST request(s), ${p.listedLocal} here, ${p.buckets} bucket(s)`,
        ]
      : []),
    `examined ${s.examined}, copied ${s.copied}, deleted ${s.deleted} (${s.expanded ?? 0} key(s) found under prefix groups)`,
    'next: stop client writes to the target (run rejoin again if any arrived), then start this site with serve --role primary --secondary <the same s3:// URL>',
  ].join('\n');
}

function trackedNames(state: FailoverState): string[] {
  const out: string[] = [];
  let after: string | undefined;
  for (let page = 0; page < trackedPagesMax; page++) {
    const names = state.trackedScan(after, trackedPage);
    if (names.length === 0) break;
    out.push(...names);
    after = names[names.length - 1];
  }
  return out;
}
