// The bus's and hub's Prometheus metrics, registered on the registry handed in (none: unexported).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LabelCounts } from '../metrics/metrics.js';

/** Every metric of the events path; one instance per gateway. */
export class BusMetrics {
  readonly published: Counter<'source'>;
  readonly received: Counter<'kind'>;
  readonly delivered: Counter<'kind'>;
  /** published, received and delivered as plain numbers for the per-event paths (added at each scrape). */
  readonly publishedBySource = new LabelCounts('source');
  readonly receivedByKind = new LabelCounts('kind');
  readonly deliveredByKind = new LabelCounts('kind');
  readonly dropped: Counter<'reason'>;
  readonly channels: Gauge;
  readonly subscriptions: Gauge;
  readonly connected: Gauge<'link'>;
  readonly ready: Gauge;
  readonly reconnects: Counter<'link'>;
  readonly lostWindows: Counter;
  readonly gapCloses: Counter;
  readonly replayed: Counter;
  readonly probeLatency: Histogram;
  readonly probeFailures: Counter;

  constructor(registry?: Registry) {
    const registers = registry ? [registry] : [];
    const { publishedBySource, receivedByKind, deliveredByKind } = this;
    this.published = new Counter({
      name: 'relaygate_events_published_total', help: 'Events accepted by the bus from this gateway, by entry path', labelNames: ['source'], registers,
      collect() { publishedBySource.flush(this); },
    });
    this.received = new Counter({
      name: 'relaygate_events_received_total', help: 'Events received from the bus for local subscribers (kind: history = carried a stream position)', labelNames: ['kind'], registers,
      collect() { receivedByKind.flush(this); },
    });
    this.delivered = new Counter({
      name: 'relaygate_events_delivered_total', help: 'Event deliveries to local sessions (one per subscriber)', labelNames: ['kind'], registers,
      collect() { deliveredByKind.flush(this); },
    });
    this.dropped = new Counter({ name: 'relaygate_events_dropped_total', help: 'Events received and not delivered (malformed raw message, duplicate offset, no local subscriber)', labelNames: ['reason'], registers });
    this.channels = new Gauge({ name: 'relaygate_bus_channels', help: 'Bus channels this gateway listens on (one per subscribed topic)', registers });
    this.subscriptions = new Gauge({ name: 'relaygate_subscriptions', help: 'Topic subscriptions of local sessions', registers });
    this.connected = new Gauge({ name: 'relaygate_bus_connected', help: '1 while the bus link is up', labelNames: ['link'], registers });
    this.ready = new Gauge({ name: 'relaygate_bus_ready', help: '1 while the bus is connected and its delivery probe passes', registers });
    this.reconnects = new Counter({ name: 'relaygate_bus_reconnects_total', help: 'Bus link re-established after a break', labelNames: ['link'], registers });
    this.lostWindows = new Counter({ name: 'relaygate_bus_lost_windows_total', help: 'Breaks of the subscriber link during which events on subscribed topics may have been lost', registers });
    this.gapCloses = new Counter({ name: 'relaygate_bus_gap_closes_total', help: 'Sessions closed with 4010 because a history topic skipped offsets', registers });
    this.replayed = new Counter({ name: 'relaygate_events_replayed_total', help: 'Events replayed from history on Subscribe with recover', registers });
    this.probeLatency = new Histogram({ name: 'relaygate_bus_probe_latency_seconds', help: 'Round trip of the delivery probe through the bus', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.probeFailures = new Counter({ name: 'relaygate_bus_probe_failures_total', help: 'Delivery probes that did not come back in time', registers });
  }
}
