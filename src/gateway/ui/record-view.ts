// What the console shows of the record: entries by kind, generations, and a
// searchable list of the at-risk locations (every entry of R names objects
// a disaster would leave to resync). The admin router serves it at
// GET /_lookahead/record?search=&limit= when given a RecordProvider; the
// composition root builds one from the primary, e.g.
//   record: (q) => buildRecordView({ ids: primary.recordIds(), nameOf: (id) => ids.nameOf(id),
//                                   entriesMax: config.recordEntriesMax, ...q })

import { S3Error } from '../../core/errors.ts';
import { consoleRecordListMax, consoleSearchCharsMax } from '../../core/limits.ts';

export type RecordEntryKind = 'key' | 'prefix' | 'upload' | 'bucket' | 'unknown';

export interface RecordQuery {
  /** Case-insensitive substring of the location name; '' lists everything. */
  search: string;
  /** Names to list, 1..consoleRecordListMax. */
  limit: number;
}

export interface RecordViewEntry {
  name: string;
  kind: RecordEntryKind;
  generation?: number;
}

export interface RecordView {
  /** Entries in the record. */
  size: number;
  /** Invariant 4's cap, when known. */
  entriesMax?: number;
  byKind: Record<RecordEntryKind, number>;
  /** Entries per generation, newest first (when the provider knows them). */
  generations?: { generation: number; entries: number }[];
  /** Distinct generations holding entries (when known). */
  generationCount?: number;
  /** Entries whose name matches the search. */
  matched: number;
  /** The first `limit` matches, in id order. */
  entries: RecordViewEntry[];
}

export type RecordProvider = (query: RecordQuery) => RecordView | Promise<RecordView>;

export const recordListDefault = 100;

/** Parses `search` and `limit` from a query; bad values are client input. */
export function parseRecordQuery(query: Record<string, string | string[] | undefined>): RecordQuery {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const search = first(query.search) ?? '';
  if (search.length > consoleSearchCharsMax) {
    throw new S3Error('InvalidArgument', `search is longer than ${consoleSearchCharsMax} characters.`);
  }
  const rawLimit = first(query.limit);
  const limit = rawLimit === undefined || rawLimit === '' ? recordListDefault : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > consoleRecordListMax) {
    throw new S3Error('InvalidArgument', `limit must be an integer from 1 to ${consoleRecordListMax}.`);
  }
  return { search, limit };
}

/** The kind of a canonical location name (src/predict/types.ts grammar). */
export function kindOfName(name: string): RecordEntryKind {
  switch (name.slice(0, 2)) {
    case 'k/':
      return 'key';
    case 'p/':
      return 'prefix';
    case 'u/':
      return 'upload';
    case 'b/':
      return 'bucket';
    default:
      return 'unknown';
  }
}

export interface RecordSource extends RecordQuery {
  ids: Iterable<number>;
  nameOf(id: number): string | undefined;
  generationOf?(id: number): number | undefined;
  entriesMax?: number;
}

/** Generations listed at most (the newest): the rest is history. */
const generationsListed = 32;

/** One pass over the record (bounded by its size, itself capped by invariant 4). */
export function buildRecordView(source: RecordSource): RecordView {
  const byKind: Record<RecordEntryKind, number> = { key: 0, prefix: 0, upload: 0, bucket: 0, unknown: 0 };
  const perGeneration = new Map<number, number>();
  const needle = source.search.toLowerCase();
  const entries: RecordViewEntry[] = [];
  let size = 0;
  let matched = 0;
  for (const id of source.ids) {
    size++;
    const name = source.nameOf(id) ?? `#${id}`;
    const kind = kindOfName(name);
    byKind[kind]++;
    const generation = source.generationOf?.(id);
    if (generation !== undefined) perGeneration.set(generation, (perGeneration.get(generation) ?? 0) + 1);
    if (needle !== '' && !name.toLowerCase().includes(needle)) continue;
    matched++;
    if (entries.length < source.limit) entries.push({ name, kind, ...(generation !== undefined ? { generation } : {}) });
  }
  const view: RecordView = { size, byKind, matched, entries };
  if (source.entriesMax !== undefined) view.entriesMax = source.entriesMax;
  if (source.generationOf !== undefined) {
    view.generationCount = perGeneration.size;
    view.generations = [...perGeneration]
      .sort((a, b) => b[0] - a[0])
      .slice(0, generationsListed)
      .map(([generation, n]) => ({ generation, entries: n }));
  }
  return view;
}

/** The view of a record known by its names only (the secondary's
 * SecondaryService.recordNames()). */
export function recordViewOfNames(names: readonly string[], query: RecordQuery, entriesMax?: number): RecordView {
  return buildRecordView({
    ids: names.keys(),
    nameOf: (i) => names[i],
    ...query,
    ...(entriesMax !== undefined ? { entriesMax } : {}),
  });
}
