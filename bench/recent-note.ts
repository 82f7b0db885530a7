// CPU per RecentWrites.note (the ancestor-fresh predictor's count of recent
// writes, on every commit of a primary) at capacity: 100,000 keys held, new
// keys five levels deep written one after another in one directory, as a
// log or a synced tree writes them. Five rounds of 200,000 notes.
//
//   flock /tmp/bench.lock npx tsx bench/recent-note.ts [OTHER_CHECKOUT]

import path from 'node:path';

const checkout = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..'));
const { RecentWrites } = await import(path.join(checkout, 'src/predict/recent.ts'));

const heldKeys = 100_000;
const notesPerRound = 200_000;
const rounds = 5;
const rw = new RecentWrites({ windowMs: 1e12 });
const keyOf = (i: number) => `logs/2026/11/30/obj-${String(i).padStart(8, '0')}`;
let n = 0;
for (let i = 0; i < heldKeys; i++) rw.note({ kind: 'put', bucket: 'bench', key: keyOf(n++) }, n);
const perNote: number[] = [];
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  for (let j = 0; j < notesPerRound; j++) rw.note({ kind: 'put', bucket: 'bench', key: keyOf(n++) }, n);
  perNote.push(((performance.now() - t0) * 1000) / notesPerRound);
}
console.log(`µs per note (the key string's building included), ${rounds} rounds: ${perNote.map((x) => x.toFixed(2)).join(' ')}`);
