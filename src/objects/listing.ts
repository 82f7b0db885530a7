// Listing over lmdb's ordered keys: S3 order is UTF-8 byte order, which is
// exactly lmdb's memcmp order on our binary keys. With a delimiter, each
// common prefix is emitted once and the cursor then seeks past every key
// under it, so a page costs O(page size) seeks and reads, not O(bucket).

import type { Database } from 'lmdb';
import { prefixSuccessor } from './meta-db.ts';

export interface ScanSpec<V> {
  db: Database<V, Buffer>;
  /** "<bucket>\0": stripped from every key before `nameOf`. */
  base: Buffer;
  /** Exclusive end of the bucket's range. */
  end: Buffer;
  prefix: Buffer;
  delimiter?: Buffer;
  /** First absolute key to read. */
  start: Buffer;
  /** Common prefixes at or before this name are not emitted (marker inside one). */
  after?: Buffer;
  /** The object key part of a relative db key. */
  nameOf(relativeKey: Buffer): Buffer;
  /** Entries (values plus prefixes) per page. */
  max: number;
}

export type ScanItem<V> = { kind: 'value'; value: V } | { kind: 'prefix'; prefix: string };

export interface ScanPage<V> {
  items: ScanItem<V>[];
  isTruncated: boolean;
}

/** One page of values and common prefixes, in key order. */
export function scanPage<V>(spec: ScanSpec<V>): ScanPage<V> {
  const items: ScanItem<V>[] = [];
  if (spec.max <= 0) return { items, isTruncated: false };
  let start = spec.start;
  // Each restart emits a common prefix or skips the one containing `after`,
  // so max + 2 restarts always suffice.
  for (let restart = 0; restart < spec.max + 3; restart++) {
    const step = scanRun(spec, start, items);
    if (step.kind === 'done') return { items, isTruncated: false };
    if (step.kind === 'full') return { items, isTruncated: true };
    start = step.seek;
  }
  throw new Error('listing did not converge'); // our bug: see the bound above
}

type RunResult = { kind: 'done' } | { kind: 'full' } | { kind: 'seek'; seek: Buffer };

/** Reads from `start` until the page fills, the prefix ends, or a common prefix needs a seek. */
function scanRun<V>(spec: ScanSpec<V>, start: Buffer, items: ScanItem<V>[]): RunResult {
  for (const { key, value } of spec.db.getRange({ start, end: spec.end })) {
    const name = spec.nameOf(key.subarray(spec.base.length));
    if (!startsWith(name, spec.prefix)) return { kind: 'done' };
    const cp = commonPrefix(name, spec.prefix.length, spec.delimiter);
    if (cp) {
      const skip = spec.after !== undefined && Buffer.compare(cp, spec.after) <= 0;
      if (!skip) {
        if (items.length === spec.max) return { kind: 'full' };
        items.push({ kind: 'prefix', prefix: cp.toString('utf8') });
      }
      return { kind: 'seek', seek: Buffer.concat([spec.base, prefixSuccessor(cp)]) };
    }
    if (items.length === spec.max) return { kind: 'full' };
    items.push({ kind: 'value', value });
  }
  return { kind: 'done' };
}

function startsWith(name: Buffer, prefix: Buffer): boolean {
  return name.length >= prefix.length && name.subarray(0, prefix.length).equals(prefix);
}

/** The name up to and including the first delimiter after the prefix, if any. */
function commonPrefix(name: Buffer, from: number, delimiter?: Buffer): Buffer | undefined {
  if (!delimiter || delimiter.length === 0) return undefined;
  const at = name.indexOf(delimiter, from);
  return at < 0 ? undefined : Buffer.from(name.subarray(0, at + delimiter.length));
}
