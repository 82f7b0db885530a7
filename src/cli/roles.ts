// The role a site plays, changeable in process (issue 4): primary,
// secondary, or promoted (a former secondary that took over, with no
// secondary of its own yet). Built by the composition root (site.ts); the
// store's hooks, the replica router and the admin actions all go through it.
//
//   secondary --promote--> promoted --attach-secondary--> primary (+resync)
//   primary --rejoin / demote (switchover)--> secondary
//
// The role taken by promotion or rejoin is durable (FailoverState): a
// restart with the old flags comes back in the role the site holds now.

import type Router from '@koa/router';
import type { RootDatabase } from 'lmdb';
import { Gauge, type Registry } from 'prom-client';
import { systemClock, systemRandom } from '../core/clock.ts';
import { copyQueueEntriesMax } from '../core/limits.ts';
import { NotPrimaryError, S3Error } from '../core/errors.ts';
import type { AdminAction } from '../gateway/admin.ts';
import { recordViewOfNames, type RecordProvider } from '../gateway/ui/record-view.ts';
import type { DiskObjectStore } from '../objects/store.ts';
import {
  createPrimaryReplication,
  createReplicaRouter,
  createSecondaryReplication,
  GatewayTarget,
  type PrimaryReplication,
  type SecondaryReplication,
} from '../replica/index.ts';
import type { ForegroundLoad } from '../replica/pacing.ts';
import type { SecondaryService } from '../replica/secondary.ts';
import { LmdbPrimaryDurable, LmdbSecondaryDurable } from '../replica/state.ts';
import { createS3Target } from '../replica/s3/target.ts';
import { FailoverClient } from '../replica/failover/client.ts';
import { SwappableHooks, startGate, trackingHooks } from '../replica/failover/hooks.ts';
import { PrimaryPeer } from '../replica/failover/primary-peer.ts';
import { ResyncRunner, type ResyncPlan } from '../replica/failover/resync.ts';
import { createFailoverRouter, type FailoverPeer } from '../replica/failover/router.ts';
import { FailoverState, clearReplicaSide, idleResync, type SiteRoleRecord } from '../replica/failover/state.ts';
import { noReplication } from '../core/changes.ts';
import type { ReplicationConfig, SiteConfig } from './site.ts';

type Log = (message: string, fields?: Record<string, unknown>) => void;

export type Mode = 'single' | 'primary' | 'promoted' | 'secondary';

/** Names of the at-risk list returned by an admin call (the rest: GET /_lookahead/record). */
export const atRiskNamesMax = 10_000;
/** How long a switchover waits for the primary's queue to drain. */
export const switchoverDrainMs = 60_000;
/** How long a promotion waits for replica requests already being applied. */
const promoteQuiesceMs = 10_000;
/** Health probes of a restarted primary's peer, while its writes are closed. */
const gateProbeMs = 1000;
/** Pause between resync attempts after a failure (peer down). */
const resyncRetryMs = 2000;
/** Resync attempts before waiting for the next attach or restart. */
const resyncAttemptsMax = 10_000;

export interface AtRiskReport {
  role: string;
  epoch: number;
  promotedAt?: number;
  atRisk: { count: number; names: string[]; truncated: boolean };
  trackedSincePromotion: number;
}

export interface SiteRolesOptions {
  config: SiteConfig;
  db: RootDatabase;
  registry: Registry;
  log: Log;
  endpoint: () => string;
  /** Client requests on this site (the gateway's count): copy priority. */
  foreground?: ForegroundLoad;
}

export class SiteRoles {
  readonly hooks = new SwappableHooks(noReplication);
  readonly state: FailoverState;
  mode: Mode;
  private epoch = 1;
  private repl: PrimaryReplication | undefined;
  private sec: SecondaryReplication | undefined;
  private store: DiskObjectStore | undefined;
  private atRisk: string[] = [];
  private resync: ResyncRunner | undefined;
  private resyncLoop: Promise<void> | undefined;
  private fencedBy: { epoch: number } | undefined;
  private demotingTo: string | undefined;
  private gateOpen = true;
  private metricsBound = false;
  private stopped = false;
  private readonly peerFacade: PrimaryPeer;

  constructor(private readonly options: SiteRolesOptions) {
    this.state = new FailoverState(options.db);
    this.mode = options.config.role;
    this.peerFacade = new PrimaryPeer({
      epoch: () => this.epoch,
      endpoint: () => options.endpoint(),
      onHigherEpoch: (epoch) => void this.selfFence(epoch),
    });
    this.bindMetrics(options.registry);
  }

  /** Role, epoch, at-risk size and resync progress for Prometheus. */
  private bindMetrics(registry: Registry): void {
    const self = this;
    new Gauge({
      name: 'lookahead_failover_epoch',
      help: 'Epoch this site holds (raised by each promotion)',
      registers: [registry],
      collect() {
        this.set(self.epoch);
      },
    });
    new Gauge({
      name: 'lookahead_failover_primary',
      help: '1 when this site accepts client writes as primary (0: secondary, fenced or read-only)',
      registers: [registry],
      collect() {
        const writable = (self.mode === 'primary' || self.mode === 'promoted') && self.gateOpen && !self.fencedBy && self.repl?.status().role !== 'fenced';
        this.set(writable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lookahead_failover_at_risk_locations',
      help: 'Locations of the record at promotion not yet settled by a resync',
      registers: [registry],
      collect() {
        this.set(self.atRisk.length);
      },
    });
    new Gauge({
      name: 'lookahead_resync_items',
      help: 'Resync work items, by state (done, total)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const r = self.resyncStatus();
        this.set({ state: 'done' }, r.done);
        this.set({ state: 'total' }, r.total);
      },
    });
  }

  private get r(): ReplicationConfig {
    const r = this.options.config.replication;
    if (!r) throw new Error(`role ${this.options.config.role} needs replication settings (a replication secret)`);
    return r;
  }

  /** Inter-site routers: the replica protocol and the resync endpoints. */
  routers(): Router[] {
    if (this.options.config.role === 'single' || !this.options.config.replication?.secret) return [];
    const secret = this.r.secret as string;
    const service = () => {
      if (this.mode === 'secondary' && this.sec) return this.counted(this.sec.service());
      // A primary answers "fenced" to an older epoch (PrimaryPeer); the
      // router only calls the methods PrimaryPeer has.
      return this.peerFacade as unknown as SecondaryService;
    };
    const peer = (): FailoverPeer | undefined => {
      if (this.mode !== 'secondary' || !this.sec || !this.store) return undefined;
      const s = this.sec.service();
      return {
        store: this.store,
        epoch: () => s.epoch,
        primary: () => s.primaryUrl,
        unsynced: (after, limit) => this.state.unsyncedScan(after, limit),
      };
    };
    return [createReplicaRouter(service, secret, systemClock), createFailoverRouter(peer, secret, systemClock)];
  }

  /** Replica requests being applied by the secondary service: promotion
   * waits for them, so no copy from the old primary lands after this site
   * took its first write as primary. */
  private inflight = 0;

  private counted(service: SecondaryService): SecondaryService {
    const wrap = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
      this.inflight++;
      try {
        return await fn(...args);
      } finally {
        this.inflight--;
      }
    };
    const wrapped = {
      health: () => service.health(),
      openSession: wrap((from: string, epoch: number) => service.openSession(from, epoch)),
      applyRecord: wrap((m: Parameters<SecondaryService['applyRecord']>[0]) => service.applyRecord(m)),
      putObject: wrap((c: Parameters<SecondaryService['putObject']>[0], b: Parameters<SecondaryService['putObject']>[1]) => service.putObject(c, b)),
      putObjects: wrap((items: Parameters<SecondaryService['putObjects']>[0]) => service.putObjects(items)),
      deleteObject: wrap((c: Parameters<SecondaryService['deleteObject']>[0]) => service.deleteObject(c)),
      putBucket: wrap((c: Parameters<SecondaryService['putBucket']>[0]) => service.putBucket(c)),
    };
    // The router calls only these methods.
    return wrapped as unknown as SecondaryService;
  }

  private async quiesce(): Promise<void> {
    for (let i = 0; i < promoteQuiesceMs / 10 && this.inflight > 0; i++) await systemClock.sleep(10);
  }

  // ------------------------------------------------------------ start / stop

  async start(store: DiskObjectStore): Promise<void> {
    this.store = store;
    if (this.options.config.role === 'single') return;
    const stored = this.state.role();
    const flags = this.options.config.failover ?? {};
    const rejoined = stored?.role === 'secondary' && stored.primary === flags.rejoinFrom;
    if (flags.rejoinFrom && !rejoined) return this.becomeSecondary(flags.rejoinFrom);
    if (stored?.role === 'secondary') return this.startSecondary(stored.primary);
    if (stored?.role === 'primary') return this.resumePromoted(stored);
    if (this.options.config.role === 'secondary') {
      await this.startSecondary(this.r.primaryUrl);
      if (flags.promote) await this.promote({});
      return;
    }
    await this.startPrimary();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.resync?.stop();
    await this.repl?.stop();
  }

  private async startSecondary(primaryUrl: string | undefined): Promise<void> {
    const sec = createSecondaryReplication({
      root: this.options.db,
      clock: systemClock,
      replicationSecret: this.r.secret ?? '',
      ...(primaryUrl ? { primaryUrl } : {}),
    });
    await sec.start(this.requireStore());
    this.sec = sec;
    this.epoch = sec.service().epoch;
    this.hooks.swap(sec.hooks);
    this.mode = 'secondary';
  }

  /** The configured primary (not promoted): the read-only gate on restart. */
  private async startPrimary(): Promise<void> {
    const store = this.requireStore();
    const restarted = store.currentSeq() > 0;
    const repl = this.createPrimary(this.r.secondaryUrl);
    await repl.start(store);
    this.repl = repl;
    this.epoch = repl.status().epoch;
    this.mode = 'primary';
    const force = this.options.config.failover?.forcePrimary === true;
    this.gateOpen = force || !restarted || (await this.peerIsOurSecondary());
    if (!this.gateOpen) {
      this.options.log('started read-only: the secondary did not answer and may have been promoted (--force-primary overrides)');
      void this.probeUntilOpen();
    }
    this.hooks.swap(this.primaryHooks(repl));
  }

  private primaryHooks(repl: PrimaryReplication) {
    return startGate(
      repl.hooks,
      () => this.gateOpen && this.fencedBy === undefined && this.demotingTo === undefined,
      () => this.refusal(),
      () => this.demotingTo,
    );
  }

  private refusal(): string {
    if (this.demotingTo) return `This site is handing over to ${this.demotingTo} (switchover); write there.`;
    if (this.fencedBy) return `This site was failed over (epoch ${this.fencedBy.epoch}) and refuses writes.`;
    return 'This primary restarted while its secondary was unreachable and refuses writes until the secondary answers (it may have been promoted); start with --force-primary to override.';
  }

  /** True when the peer answers as our secondary at no higher epoch. */
  private async peerIsOurSecondary(): Promise<boolean> {
    const target = this.repl?.target;
    if (!target) return false;
    try {
      const h = await target.health();
      return h.role === 'secondary' && h.epoch <= this.epoch;
    } catch {
      return false;
    }
  }

  private async probeUntilOpen(): Promise<void> {
    for (let i = 0; !this.stopped && !this.gateOpen && this.mode === 'primary'; i++) {
      await systemClock.sleep(gateProbeMs);
      if (this.repl?.status().role === 'fenced') return; // the replicator learnt the higher epoch
      if (await this.peerIsOurSecondary()) this.gateOpen = true;
    }
  }

  private createPrimary(secondaryUrl: string | undefined): PrimaryReplication {
    const r = this.r;
    const { config, log } = this.options;
    const target =
      r.target ?? (secondaryUrl?.startsWith('s3://') ? createS3Target({ url: secondaryUrl, log }) : undefined);
    const registry = this.metricsBound ? undefined : this.options.registry;
    this.metricsBound = true;
    return createPrimaryReplication({
      root: this.options.db,
      ...(target ? { target } : { secondaryUrl, replicationSecret: r.secret }),
      clock: systemClock,
      random: systemRandom,
      config: {
        site: `${config.host}:${config.port}`,
        onSecondaryDown: r.onSecondaryDown,
        ...(r.syncCopyOnMiss ? { syncCopyOnMiss: true } : {}),
        ...(r.recordEntriesMax ? { recordEntriesMax: r.recordEntriesMax } : {}),
        ...(r.copyPriority ? { copyPriority: r.copyPriority } : {}),
        ...(r.copyLagMaxMs !== undefined ? { copyLagMaxMs: r.copyLagMaxMs } : {}),
      },
      predictors: r.predictors,
      ...(this.options.foreground ? { foreground: this.options.foreground } : {}),
      ...(registry ? { registry } : {}),
      log,
    });
  }

  // ------------------------------------------------------------ promote

  /** Issue 4: the secondary takes over at a higher epoch, durably. */
  async promote(body: { planned?: boolean }): Promise<AtRiskReport> {
    if (this.mode === 'promoted' || (this.mode === 'primary' && this.state.role()?.role === 'primary')) return this.report();
    if (this.mode !== 'secondary' || !this.sec) throw new S3Error('InvalidRequest', `Only a secondary can be promoted (this site is ${this.mode}).`);
    const service = this.sec.service();
    const epoch = Math.max(service.epoch, this.state.role()?.epoch ?? 0) + 1;
    this.atRisk = service.recordNames();
    await this.state.clearTracked();
    await this.state.setResyncMeta({ ...idleResync });
    const role: SiteRoleRecord = { role: 'primary', epoch, promotedAt: systemClock.now(), ...(body.planned ? { planned: true } : {}) };
    await this.state.setRole(role);
    this.epoch = epoch;
    this.mode = 'promoted'; // replica requests from now on are fenced
    await this.quiesce();
    this.hooks.swap(this.trackingHooks());
    this.options.log('promoted to primary', { epoch, atRisk: this.atRisk.length });
    return this.report();
  }

  private trackingHooks() {
    return trackingHooks(this.state, () => (this.fencedBy ? new NotPrimaryError(this.refusal()) : undefined));
  }

  /** After a restart: promoted, maybe attached and resyncing. */
  private async resumePromoted(stored: SiteRoleRecord): Promise<void> {
    this.epoch = stored.epoch;
    this.atRisk = await recordNamesOf(this.options.db);
    if (stored.fencedBy) this.fencedBy = { epoch: stored.fencedBy };
    if (!stored.secondary) {
      this.mode = 'promoted';
      this.hooks.swap(this.trackingHooks());
      return;
    }
    const repl = this.createPrimary(stored.secondary);
    await repl.start(this.requireStore());
    this.repl = repl;
    this.mode = 'primary';
    this.hooks.swap(this.primaryHooks(repl));
    // An interrupted resync resumes: its list is durable once planned; a
    // crash while planning plans again (R and the tracked set are kept
    // until the resync is done).
    const phase = this.state.resyncMeta().phase;
    if (phase === 'copying') this.startResync(stored.secondary);
    if (phase === 'planning') this.startResync(stored.secondary, this.plan(stored));
  }

  /** The resync's work: R's locations (unless planned) and the tracked keys. */
  private plan(stored: SiteRoleRecord): ResyncPlan {
    return { record: stored.planned ? [] : this.atRisk, tracked: [...scanAll((after) => this.state.trackedScan(after, 1000))] };
  }

  /** The at-risk list: R as this site holds it (a secondary), or as it was
   * at promotion (until the resync settles it). */
  report(all = false): AtRiskReport {
    const stored = this.state.role();
    const names = this.mode === 'secondary' && this.sec ? this.sec.service().recordNames() : this.atRisk;
    const shown = all ? names : names.slice(0, atRiskNamesMax);
    return {
      role: this.mode === 'promoted' ? 'primary' : this.mode,
      epoch: this.epoch,
      ...(stored?.promotedAt ? { promotedAt: stored.promotedAt } : {}),
      atRisk: { count: names.length, names: shown, truncated: shown.length < names.length },
      trackedSincePromotion: this.state.trackedCount(),
    };
  }

  // ------------------------------------------------------------ attach (failback, new primary's side)

  /** The old primary rejoined as our secondary at `url`: replicate to it and
   * resync R plus the keys written since promotion. */
  async attachSecondary(body: { url?: unknown }): Promise<unknown> {
    const url = typeof body.url === 'string' ? body.url : undefined;
    if (!url || !/^https?:\/\//.test(url)) throw new S3Error('InvalidRequest', 'attach-secondary needs {"url": "http://HOST:PORT"}.');
    const stored = this.state.role();
    if (this.mode === 'primary' && stored?.secondary === url) return { attached: url, resync: this.resyncStatus() };
    if (this.mode !== 'promoted' || !stored) throw new S3Error('InvalidRequest', `Only a promoted site attaches a secondary (this site is ${this.mode}).`);
    if (!this.r.secret) throw new S3Error('InvalidRequest', 'This site has no replication secret.');
    const store = this.requireStore();
    // The old primary side of this site's lmdb, if any, is stale.
    await clearReplicaSide(this.options.db, 'p');
    await new LmdbPrimaryDurable(this.options.db).setMeta({ epoch: this.epoch });
    const repl = this.createPrimary(url);
    await repl.start(store);
    this.repl = repl;
    // From here on writes go through Q to the new secondary; a write the
    // tracking hooks admitted but did not commit yet fails its commit
    // (uncovered) and the client retries: no write escapes both.
    this.hooks.swap(this.primaryHooks(repl));
    this.mode = 'primary';
    await this.options.db.transaction(() => {}); // earlier commits are visible now
    await this.state.setRole({ ...stored, secondary: url });
    await this.state.setResyncMeta({ ...idleResync, phase: 'planning' });
    const plan = this.plan(stored);
    this.startResync(url, plan);
    return { attached: url, record: plan.record.length, tracked: plan.tracked.length };
  }

  private startResync(url: string, plan?: ResyncPlan): void {
    const store = this.requireStore();
    const secret = this.r.secret as string;
    const runner = new ResyncRunner({
      store,
      peer: new FailoverClient({ url, secret, clock: systemClock }),
      putBucket: (copy) => new GatewayTarget({ url, secret, clock: systemClock }).putBucket(copy),
      currentSeq: () => store.currentSeq(),
      state: this.state,
      epoch: this.epoch,
      clock: systemClock,
      log: this.options.log,
    });
    this.resync = runner;
    this.resyncLoop = (async () => {
      for (let attempt = 0; attempt < resyncAttemptsMax && !this.stopped; attempt++) {
        if (await runner.run(attempt === 0 && plan ? () => plan : undefined)) {
          await this.finishResync();
          return;
        }
        await systemClock.sleep(resyncRetryMs);
      }
    })();
  }

  private async finishResync(): Promise<void> {
    // Both sites agree on R ∪ tracked now: the at-risk list is settled.
    await this.state.clearTracked();
    await clearReplicaSide(this.options.db, 's');
    this.atRisk = [];
    this.options.log('resync done', { ...this.resync?.progress() });
  }

  /** Tests: resolves when the running resync ends. */
  async resyncSettled(): Promise<void> {
    await this.resyncLoop;
  }

  resyncStatus() {
    return this.resync?.progress() ?? this.state.resyncMeta();
  }

  // ------------------------------------------------------------ rejoin / demote (old primary's side)

  /** The old primary becomes the secondary of `primary`. */
  async rejoin(body: { primary?: unknown }): Promise<unknown> {
    const primary = typeof body.primary === 'string' ? body.primary : undefined;
    if (!primary || !/^https?:\/\//.test(primary)) throw new S3Error('InvalidRequest', 'rejoin needs {"primary": "http://HOST:PORT"}.');
    if (this.mode === 'secondary') return { role: 'secondary', primary: this.sec?.service().primaryUrl };
    await this.becomeSecondary(primary);
    return { role: 'secondary', primary };
  }

  /** Planned switchover: refuse writes, drain Q, become `primary`'s secondary. */
  async demote(body: { primary?: unknown; drainMs?: unknown }): Promise<unknown> {
    const primary = typeof body.primary === 'string' ? body.primary : undefined;
    if (!primary) throw new S3Error('InvalidRequest', 'demote needs {"primary": "http://HOST:PORT"}.');
    if (this.mode !== 'primary' || !this.repl) throw new S3Error('InvalidRequest', `Only a primary can hand over (this site is ${this.mode}).`);
    const maxMs = typeof body.drainMs === 'number' ? Math.min(body.drainMs, switchoverDrainMs) : switchoverDrainMs;
    this.demotingTo = primary;
    const drained = await this.repl.replicator.drain(maxMs);
    if (!drained) {
      this.demotingTo = undefined;
      throw new S3Error('ServiceUnavailable', `The queue did not drain within ${maxMs} ms; still primary.`);
    }
    await this.becomeSecondary(primary);
    this.demotingTo = undefined;
    return { role: 'secondary', primary, drained: true };
  }

  private async becomeSecondary(primary: string): Promise<void> {
    const repl = this.repl;
    this.repl = undefined;
    this.resync?.stop();
    await repl?.stop();
    // What may differ between this site and any other, handed to the next
    // primary's resync: its unconfirmed writes as a primary (Q, dirty), its
    // writes since a promotion (tracked) and the record it held as a
    // secondary (R).
    const tracked = [...scanAll((after) => this.state.trackedScan(after, 1000))];
    await this.state.setUnsynced([...new Set([...unsyncedOf(this.options.db), ...tracked, ...(await recordNamesOf(this.options.db))])]);
    // An epoch this site saw (its own, or the one it was fenced by): a
    // later promotion of this site must go above it.
    const pm = new LmdbPrimaryDurable(this.options.db).meta();
    const epoch = Math.max(this.epoch, pm.epoch, pm.fencedBy?.epoch ?? 0, this.fencedBy?.epoch ?? 0, this.state.role()?.epoch ?? 0);
    // This site's R, Q and R' describe the old arrangement: the new primary
    // resyncs what may differ and rebuilds R from nothing.
    await clearReplicaSide(this.options.db, 's');
    await clearReplicaSide(this.options.db, 'p');
    await this.state.clearTracked();
    await this.state.setResyncMeta({ ...idleResync });
    await this.state.setRole({ role: 'secondary', epoch, primary });
    this.atRisk = [];
    this.fencedBy = undefined;
    await this.startSecondary(primary);
    this.options.log('now the secondary of', { primary });
  }

  private async selfFence(epoch: number): Promise<void> {
    if (this.fencedBy || this.mode === 'secondary') return;
    this.fencedBy = { epoch };
    this.options.log('a peer showed a higher epoch: refusing writes', { epoch });
    const stored = this.state.role();
    if (stored) await this.state.setRole({ ...stored, fencedBy: epoch });
  }

  // ------------------------------------------------------------ status, record, actions

  status(): Record<string, unknown> {
    const replStatus = this.repl?.status();
    const fenced = this.fencedBy !== undefined || replStatus?.role === 'fenced';
    const role = this.mode === 'promoted' ? 'primary' : this.mode;
    const out: Record<string, unknown> = { role: fenced ? 'fenced' : role, epoch: replStatus?.epoch ?? this.epoch };
    if (this.mode === 'secondary' && this.sec) {
      const s = this.sec.service();
      out.epoch = s.epoch;
      out.replication = { ...s.health(), primary: s.primaryUrl };
    } else if (replStatus) {
      out.replication = { ...replStatus, epoch: this.epoch, ...(fenced ? { role: 'fenced' } : {}) };
    }
    if (this.mode === 'primary' && !this.gateOpen) out.readOnly = 'restarted while the secondary was unreachable';
    const stored = this.state.role();
    if (stored?.role === 'primary') {
      out.failover = {
        promotedAt: stored.promotedAt,
        atRisk: this.atRisk.length,
        trackedSincePromotion: this.state.trackedCount(),
        ...(stored.secondary ? { secondary: stored.secondary } : {}),
      };
      const r = this.resyncStatus();
      if (r.phase !== 'idle') out.resync = r;
    }
    return out;
  }

  record(): RecordProvider | undefined {
    if (this.options.config.role === 'single') return undefined;
    return (query) => {
      if (this.mode === 'secondary' && this.sec) return recordViewOfNames(this.sec.service().recordNames(), query);
      return recordViewOfNames(this.atRisk, query);
    };
  }

  actions(): AdminAction[] {
    if (this.options.config.role === 'single') return [];
    const obj = (b: unknown) => (typeof b === 'object' && b !== null ? (b as Record<string, unknown>) : {});
    return [
      { name: 'promote', run: (b) => this.promote({ planned: obj(b).planned === true }) },
      { name: 'at-risk', run: async (b) => this.report(obj(b).all === true) },
      { name: 'attach-secondary', run: (b) => this.attachSecondary(obj(b)) },
      { name: 'rejoin', run: (b) => this.rejoin(obj(b)) },
      { name: 'demote', run: (b) => this.demote(obj(b)) },
    ];
  }

  private requireStore(): DiskObjectStore {
    if (!this.store) throw new Error('site roles used before start');
    return this.store;
  }
}

/** The names of R as this site stored it while it was a secondary. */
export async function recordNamesOf(root: RootDatabase): Promise<string[]> {
  const durable = new LmdbSecondaryDurable(root);
  const record = await durable.record.load();
  const out: string[] = [];
  for (const id of record.toBitmap()) {
    const name = durable.names.nameOf(id);
    if (name !== undefined) out.push(name);
  }
  return out;
}

/** Q's keys and the dirty set of this site's primary state. */
export function unsyncedOf(root: RootDatabase): string[] {
  const durable = new LmdbPrimaryDurable(root);
  const names = new Set<string>(durable.dirtyScan(copyQueueEntriesMax));
  for (const [qkey] of scanAllEntries((after) => durable.qScan(after, 1000))) names.add(qkey);
  return [...names];
}

function* scanAllEntries<T>(page: (after: string | undefined) => Array<[string, T]>): Generator<[string, T]> {
  let after: string | undefined;
  for (let i = 0; i < copyQueueEntriesMax / 1000 + 1; i++) {
    const items = page(after);
    if (items.length === 0) return;
    yield* items;
    after = items[items.length - 1]?.[0];
  }
}

/** Pages of a scan, bounded (the tracked set is bounded by Q's limit). */
function* scanAll(page: (after: string | undefined) => string[]): Generator<string> {
  let after: string | undefined;
  for (let i = 0; i < 10_000; i++) {
    const items = page(after);
    if (items.length === 0) return;
    yield* items;
    after = items[items.length - 1];
  }
}
