// Small helpers shared by the predictors.

import type { ChangeIntent } from '../../core/changes.ts';

/** Changes that name an object key (every kind but the bucket ones). */
export function isObjectChange(change: ChangeIntent): boolean {
  return change.kind !== 'bucket-create' && change.kind !== 'bucket-delete';
}

/** The last run of decimal digits in `text`, if any. */
export function lastNumber(text: string): { start: number; digits: string } | undefined {
  const match = /(\d+)(?!.*\d)/.exec(text);
  if (match === null) return undefined;
  return { start: match.index, digits: match[1] as string };
}

/**
 * `text` with its last number increased by `step`, keeping zero padding
 * ("part-0099" + 1 = "part-0100"); undefined when there is no number or the
 * number is too long to count exactly.
 */
export function bumpLastNumber(text: string, step: number): string | undefined {
  const found = lastNumber(text);
  if (found === undefined || found.digits.length > 15) return undefined;
  const next = String(Number(found.digits) + step).padStart(found.digits.length, '0');
  return text.slice(0, found.start) + next + text.slice(found.start + found.digits.length);
}
