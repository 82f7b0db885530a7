// One mutating request's passage through the ChangeHooks (src/core/changes.ts):
// admit at the start, committed inside the commit transaction, then either
// settled (committed: before the client's ack) or aborted (any failure after
// admit: the body broke off, BadDigest, a precondition or re-check failed,
// ENOSPC, the transaction failed). The write's own token lets the hooks
// release exactly this admission, never a concurrent writer's of the same key.

import type { Admission, ChangeHooks, ChangeIntent, CommittedChange, CommittedVersion, WriteToken } from '../core/changes.ts';
import { newWriteToken } from '../core/changes.ts';

export class HookedWrite {
  readonly intent: ChangeIntent;
  /** Started at once; the commit awaits it (durableWrite or `run`'s work). */
  readonly admission: Promise<Admission>;
  private done: CommittedChange | undefined;

  constructor(
    private readonly hooks: ChangeHooks,
    intent: ChangeIntent,
  ) {
    this.intent = withToken(intent, newWriteToken());
    this.admission = hooks.admit(this.intent);
    this.admission.catch(() => {}); // awaited later; avoid an unhandled rejection meanwhile
  }

  /** Inside the commit transaction, last: a throw rolls the change back.
   * `version`: the committed meta and body, when the body is inline. */
  committed(seq: number, version?: CommittedVersion): void {
    const change = committedChange(this.intent, seq, version);
    this.hooks.committed(change);
    this.done = change;
  }

  /**
   * Runs the rest of the write. On failure its admission is released as
   * soon as it is decided (a miss still waiting for the secondary releases
   * on the ack); on success the ack waits for `settled`.
   */
  async run<T>(work: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (err) {
      this.abort();
      throw err;
    }
    const settling = this.done === undefined ? undefined : this.hooks.settled?.(this.done);
    if (settling !== undefined) await settling;
    return result;
  }

  private abort(): void {
    void this.admission.then(
      () => this.hooks.aborted?.(this.intent),
      () => {}, // refused: it holds nothing
    );
  }
}

// Built field by field, not spread: two per write, and V8's object spread
// cost ~3 µs of them per 4 KiB PUT (bench/primary-hooks-cpu.ts profile).
function withToken(intent: ChangeIntent, token: WriteToken): ChangeIntent {
  const out: ChangeIntent = { kind: intent.kind, bucket: intent.bucket, key: intent.key, token };
  if (intent.uploadId !== undefined) out.uploadId = intent.uploadId;
  return out;
}

function committedChange(intent: ChangeIntent, seq: number, version: CommittedVersion | undefined): CommittedChange {
  const out: CommittedChange = { kind: intent.kind, bucket: intent.bucket, key: intent.key, seq };
  if (intent.token !== undefined) out.token = intent.token;
  if (intent.uploadId !== undefined) out.uploadId = intent.uploadId;
  if (version !== undefined) out.version = version;
  return out;
}
