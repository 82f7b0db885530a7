// Time and randomness are parameters, never globals, so replica code runs
// under a seeded simulation (habit 6).

export interface Clock {
  /** Milliseconds since the epoch (wall clock, for timestamps). */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock's time. */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

/** Deterministic PRNG (mulberry32) for simulations and jitter under test. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

export const systemRandom: Random = { next: () => Math.random() };
