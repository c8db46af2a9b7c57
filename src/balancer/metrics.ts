// Per-node compute metrics. Gauges are read at scrape time, so the hot path only bumps counters.
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
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

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * One node's call count and latency histogram as plain numbers, read at scrape: a call costs an
 * addition and a bucket search, where prom-client would hash a label object per inc and observe.
 */
export class NodeMetrics {
  /** Calls sent since the last scrape moved them into the counter. */
  requests = 0;
  /** Answers per latency bucket (not cumulative); the last slot is +Inf. */
  readonly buckets = new Float64Array(latencyBuckets.length + 1);
  sum = 0;
  count = 0;

  /** Counts one call sent. */
  sent(): void {
    this.requests++;
  }

  /** Records one answer's latency. */
  observe(seconds: number): void {
    let i = 0;
    while (i < latencyBuckets.length && seconds > latencyBuckets[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** relaygate_node_latency_seconds rendered from every node's NodeMetrics (a prom-client metric by shape). */
class NodeLatencyHistogram {
  readonly name = 'relaygate_node_latency_seconds';
  readonly help = 'time from sending a call to its answer';
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(private readonly nodes: ReadonlyMap<string, NodeMetrics>) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> } {
    const values = [];
    for (const [node, m] of this.nodes) {
      let cumulative = 0;
      for (let i = 0; i < m.buckets.length; i++) {
        cumulative += m.buckets[i]!;
        const le = i < latencyBuckets.length ? latencyBuckets[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { le, node }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { node }, value: m.sum });
      values.push({ metricName: `${this.name}_count`, labels: { node }, value: m.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const m of this.nodes.values()) {
      m.buckets.fill(0);
      m.sum = 0;
      m.count = 0;
    }
  }
}

/** The compute metrics of one gateway, registered in the registry it is given. */
export class ComputeMetrics {
  private readonly requests: Counter<'node'>;
  /** Per-node counts of the hot path, by node key. */
  private readonly nodeCounts = new Map<string, NodeMetrics>();
  private readonly errors: Counter<'node' | 'code'>;
  private readonly ejections: Counter<'node'>;
  private readonly retries: Counter<'node'>;
  private readonly rejected: Counter<'reason'>;
  /** Codes seen per node, so a departed node's error series can be removed. */
  private readonly errorCodes = new Map<string, Set<string>>();

  constructor(registry: Registry, source: ComputeMetricsSource) {
    const registers = [registry];
    const nodeCounts = this.nodeCounts;
    this.requests = new Counter({
      name: 'relaygate_node_requests_total', help: 'calls sent to a node', labelNames: ['node'], registers,
      collect() {
        for (const [node, m] of nodeCounts) {
          if (m.requests === 0) continue;
          this.inc({ node }, m.requests);
          m.requests = 0;
        }
      },
    });
    registry.registerMetric(new NodeLatencyHistogram(nodeCounts) as unknown as Metric);
    this.errors = new Counter({ name: 'relaygate_node_errors_total', help: 'calls to a node that ended in an error, by code', labelNames: ['node', 'code'], registers });
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

  /** The counts of node `key` (the same object for as long as the node is known). */
  forNode(key: string): NodeMetrics {
    let m = this.nodeCounts.get(key);
    if (!m) this.nodeCounts.set(key, (m = new NodeMetrics()));
    return m;
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
    this.nodeCounts.delete(key);
    for (const metric of [this.requests, this.ejections, this.retries]) metric.remove({ node: key });
    for (const code of this.errorCodes.get(key) ?? []) this.errors.remove({ node: key, code });
    this.errorCodes.delete(key);
  }
}
