// Client S3 requests in flight and arrived, for the copier's priority
// (src/replica/pacing.ts): the composition root hands one counter to the
// gateway, which counts, and to the primary's replication, which reads.
// Inter-site and operator routes (/_lookahead/*) are not client load.

import type { ForegroundLoad } from '../replica/pacing.ts';

export class ClientLoad implements ForegroundLoad {
  private active = 0;
  private arrived = 0;

  /** An S3 request arrived; pair with end(). */
  begin(): void {
    this.active++;
    this.arrived++;
  }

  end(): void {
    this.active--;
  }

  inFlight(): number {
    return this.active;
  }

  arrivals(): number {
    return this.arrived;
  }
}
