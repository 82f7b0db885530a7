// Prometheus metrics of the S3 front door, registered on the Registry the
// composition root passes in (no module-level singletons).

import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Request latency buckets, seconds: loopback 4 KiB ops up to big bodies. */
const latencyBucketsSeconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

export class GatewayMetrics {
  private readonly requests: Counter<'operation' | 'status'>;
  private readonly latency: Histogram<'operation'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'lookahead_s3_requests_total',
      help: 'S3 requests answered, by operation and HTTP status',
      labelNames: ['operation', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'lookahead_s3_request_seconds',
      help: 'Time from request to the end of the response, by operation',
      labelNames: ['operation'],
      buckets: latencyBucketsSeconds,
      registers,
    });
  }

  /** `operation` is an Operation kind: a small fixed set, safe as a label. */
  observe(operation: string, status: number, seconds: number): void {
    this.requests.inc({ operation, status: String(status) });
    this.latency.observe({ operation }, seconds);
  }
}
