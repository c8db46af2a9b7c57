// Per-node compute metrics. Gauges are read at scrape time, so the hot path only bumps counters.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { BalancedNode } from './node-state.js';

/** What the gauges read at each scrape. */
export interface ComputeMetricsSource {
  nodes(): Iterable<BalancedNode>;
  /** Calls waiting for one of a node's connections (0 when the link does not say). */
  pending(node: BalancedNode): number;
  queueLength(): number;
}

/** Why a request was refused before reaching any node. */
export type RejectReason = 'queue_full' | 'queue_timeout' | 'no_node' | 'unknown_function';

/** Metrics children of one node, cached so the hot path does no label lookups. */
export interface NodeMetrics {
  readonly requests: Counter.Internal;
  readonly latency: Histogram.Internal<'node'>;
}

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** The compute metrics of one gateway, registered in the registry it is given. */
export class ComputeMetrics {
  private readonly requests: Counter<'node'>;
  private readonly errors: Counter<'node' | 'code'>;
  private readonly latency: Histogram<'node'>;
  private readonly ejections: Counter<'node'>;
  private readonly retries: Counter<'node'>;
  private readonly rejected: Counter<'reason'>;
  /** Codes seen per node, so a departed node's error series can be removed. */
  private readonly errorCodes = new Map<string, Set<string>>();

  constructor(registry: Registry, source: ComputeMetricsSource) {
    const registers = [registry];
    this.requests = new Counter({ name: 'relaygate_node_requests_total', help: 'calls sent to a node', labelNames: ['node'], registers });
    this.errors = new Counter({ name: 'relaygate_node_errors_total', help: 'calls to a node that ended in an error, by code', labelNames: ['node', 'code'], registers });
    this.latency = new Histogram({ name: 'relaygate_node_latency_seconds', help: 'time from sending a call to its answer', labelNames: ['node'], buckets: latencyBuckets, registers });
    this.ejections = new Counter({ name: 'relaygate_node_ejections_total', help: 'passive outlier ejections of a node', labelNames: ['node'], registers });
    this.retries = new Counter({ name: 'relaygate_node_retries_total', help: 'calls retried elsewhere after never reaching this node', labelNames: ['node'], registers });
    this.rejected = new Counter({ name: 'relaygate_compute_rejected_total', help: 'invocations refused before any node, by reason', labelNames: ['reason'], registers });
    const gauge = (name: string, help: string, read: (node: BalancedNode) => number): Gauge<'node'> =>
      new Gauge({
        name, help, labelNames: ['node'], registers,
        collect() {
          this.reset();
          for (const node of source.nodes()) this.set({ node: node.key }, read(node));
        },
      });
    [
      gauge('relaygate_node_in_flight', 'calls in flight on a node (this gateway)', (n) => n.inFlight),
      gauge('relaygate_node_queued', 'calls waiting for one of a node\'s connections', (n) => source.pending(n)),
      gauge('relaygate_node_up', '1 while a node is in rotation (healthy, not ejected, not draining)', (n) => (n.inRotation ? 1 : 0)),
      gauge('relaygate_node_weight', 'a node\'s weight after slow start', (n) => n.effectiveWeight(Date.now())),
    ];
    new Gauge({
      name: 'relaygate_compute_queue_length', help: 'invocations waiting for a free node', registers,
      collect() { this.set(source.queueLength()); },
    });
  }

  forNode(key: string): NodeMetrics {
    return { requests: this.requests.labels(key), latency: this.latency.labels(key) };
  }

  error(key: string, code: string): void {
    this.errors.inc({ node: key, code });
    let codes = this.errorCodes.get(key);
    if (!codes) this.errorCodes.set(key, (codes = new Set()));
    codes.add(code);
  }

  ejected(key: string): void {
    this.ejections.inc({ node: key });
  }

  retried(key: string): void {
    this.retries.inc({ node: key });
  }

  reject(reason: RejectReason): void {
    this.rejected.inc({ reason });
  }

  /** Forgets a node that left for good, so departed nodes do not pile up as series. */
  removeNode(key: string): void {
    for (const metric of [this.requests, this.latency, this.ejections, this.retries]) metric.remove({ node: key });
    for (const code of this.errorCodes.get(key) ?? []) this.errors.remove({ node: key, code });
    this.errorCodes.delete(key);
  }
}
