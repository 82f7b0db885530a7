// Deterministic simulation of the replication protocol (issue 3, "Proof").
// Replay one schedule: SIM_SEED=123 npx vitest run test/replica/simulation.test.ts (SIM_TRACE=1 traces it)
// More schedules: SIM_RUNS=20000 npx vitest run test/replica/simulation.test.ts
// Other schedules (a soak beyond CI's): SIM_SEED_BASE=100000 SIM_RUNS=20000 ...

import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../src/replica/sim/harness.ts';
import type { SimOptions, SimResult } from '../../src/replica/sim/harness.ts';

const replaySeed = process.env.SIM_SEED === undefined ? undefined : Number(process.env.SIM_SEED);
const runs = Number(process.env.SIM_RUNS ?? 1500);
const steps = Number(process.env.SIM_STEPS ?? 200);
/** First seed of the run; CI's schedules start at 1000. */
const seedBase = Number(process.env.SIM_SEED_BASE ?? 1000);
/** About 10 ms per schedule of 200 steps here; generous for slow machines. */
const timeout = Math.max(120_000, runs * steps * 0.25);

function replayHint(result: SimResult, variant: string): string {
  return `simulation failed (${variant}) at step ${result.step}: ${result.failure}\n` +
    `replay: SIM_SEED=${result.seed} SIM_STEPS=${steps} npx vitest run test/replica/simulation.test.ts -t "${variant}"` +
    ' (add SIM_TRACE=1 for a trace of every event)';
}

async function many(variant: string, base: Omit<SimOptions, 'seed' | 'predictors' | 'recordEntriesMax'>, count: number): Promise<SimResult[]> {
  const seeds = replaySeed === undefined ? Array.from({ length: count }, (_, i) => seedBase + i) : [replaySeed];
  const results: SimResult[] = [];
  for (const seed of seeds) {
    // Half the schedules with src/predict's predictors, half with the own location only.
    // Record limits from starved (constant backpressure) to roomy.
    const recordEntriesMax = [4, 12, 40][seed % 3] as number;
    const result = await runSimulation({ ...base, seed, predictors: seed % 2 === 0, recordEntriesMax });
    if (!result.ok) throw new Error(replayHint(result, variant));
    results.push(result);
  }
  return results;
}

describe('replication simulation', () => {
  it('refuse mode: coverage, R\' ⊆ R, bounded R, convergence', { timeout }, async () => {
    const results = await many('refuse mode', { steps, mode: 'refuse' }, runs);
    const total = results.reduce(
      (a, r) => ({
        ops: a.ops + r.stats.ops,
        crashes: a.crashes + r.stats.crashesP + r.stats.crashesS,
        misses: a.misses + r.stats.misses,
        hits: a.hits + r.stats.hits,
        differing: a.differing + r.stats.differing,
      }),
      { ops: 0, crashes: 0, misses: 0, hits: 0, differing: 0 },
    );
    // The schedules really exercised the protocol (not vacuous).
    expect(total.ops).toBeGreaterThan(results.length * 10);
    if (replaySeed === undefined) {
      expect(total.crashes).toBeGreaterThan(results.length / 2);
      expect(total.hits).toBeGreaterThan(0);
      expect(total.misses).toBeGreaterThan(0);
      // The sites really diverged while faults ran: coverage was tested.
      expect(total.differing).toBeGreaterThan(results.length);
    }
  });

  it('degraded mode: differences covered by R or the dirty set, convergence', { timeout }, async () => {
    await many('degraded mode', { steps, mode: 'degraded' }, Math.ceil(runs / 2));
  });

  // Claim 2: each acked miss is checked on S at its ack. Refuse mode makes
  // most misses wait for S; in degraded mode most misses of these faulty
  // schedules are admitted while S is unreachable (nothing to copy to).
  for (const mode of ['refuse', 'degraded'] as const) {
    it(`synchronous copy on a miss (claim 2), ${mode} mode: every acked miss is on S unless S was unreachable or the copy failed`, { timeout }, async () => {
      const results = await many(`sync copy on miss, ${mode} mode`, { steps, mode, syncCopyOnMiss: true }, Math.ceil(runs / 4));
      const sum = (f: (r: SimResult) => number) => results.reduce((n, r) => n + f(r), 0);
      const [acked, copied, left] = [sum((r) => r.stats.syncAcked), sum((r) => r.stats.syncCopied), sum((r) => r.stats.syncLeft)];
      expect(copied + left).toBe(acked);
      if (replaySeed === undefined) {
        // Copies were checked on S at their acks, and faults left some to the copier.
        expect(copied).toBeGreaterThan(results.length / 20);
        expect(left).toBeGreaterThan(0);
      }
    });
  }
});
