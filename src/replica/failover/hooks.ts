// ChangeHooks used around a failover.
//
// SwappableHooks: the store holds one ChangeHooks for its life; a site that
// changes role in process (promote, rejoin, switchover) swaps what is behind
// it. TrackingHooks: a promoted site with no secondary yet admits every write
// and adds its key to the durable tracked set inside the commit transaction,
// so the rejoin copies exactly those back. StartGate: an old primary that
// restarts while its peer is unreachable refuses writes until the peer
// answers (it may have been failed over meanwhile).

import type { Admission, ChangeHooks, ChangeIntent, CommittedChange } from '../../core/changes.ts';
import { NotPrimaryError } from '../../core/errors.ts';
import { queueKeyOf } from '../primary.ts';
import type { FailoverState } from './state.ts';

/** Pass-through hooks return the inner promise as is: no extra hop per write. */
const settledAlready: Promise<void> = Promise.resolve();

export class SwappableHooks implements ChangeHooks {
  constructor(private inner: ChangeHooks) {}

  swap(inner: ChangeHooks): void {
    this.inner = inner;
  }

  get current(): ChangeHooks {
    return this.inner;
  }

  admit(change: ChangeIntent): Promise<Admission> {
    return this.inner.admit(change);
  }

  committed(change: CommittedChange): void {
    this.inner.committed(change);
  }

  // A swap between admit and these reaches hooks that never saw the token:
  // a no-op there, and the old hooks' lease ends the admission.
  aborted(change: ChangeIntent): void {
    this.inner.aborted?.(change);
  }

  settled(change: CommittedChange): Promise<void> {
    return this.inner.settled?.(change) ?? settledAlready;
  }
}

/** Every write admitted; its key tracked durably with the commit. */
export function trackingHooks(state: FailoverState, refuse?: () => Error | undefined): ChangeHooks {
  return {
    admit: async (change) => {
      const err = refuse?.();
      if (err) throw err;
      return { hit: false };
    },
    committed: (change) => {
      const name = queueKeyOf(change);
      if (name !== undefined) state.trackSync(name);
    },
  };
}

/** Refuses writes until `open()` says the site may write. */
export function startGate(inner: ChangeHooks, open: () => boolean, message: () => string, primary?: () => string | undefined): ChangeHooks {
  return {
    // Not async: an async wrapper returning the inner promise costs every
    // write a promise and extra turns to adopt it.
    admit: (change) => (open() ? inner.admit(change) : Promise.reject(new NotPrimaryError(message(), primary?.()))),
    committed: (change) => inner.committed(change),
    aborted: (change) => inner.aborted?.(change),
    settled: (change) => inner.settled?.(change) ?? settledAlready,
  };
}
