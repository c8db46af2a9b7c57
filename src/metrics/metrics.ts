// Prometheus metrics of one gateway, in a registry of its own (several gateways may share a process).
// Other modules register their metrics in `registry`.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * Counts by one label kept as plain numbers and added to their counter when it is scraped: a
 * per-frame path does a Map lookup and an addition, where counter.inc() would hash a label object.
 */
export class LabelCounts<T extends string> {
  private readonly counts = new Map<string, { n: number }>();

  constructor(private readonly label: T) {}

  /** Adds `by` to the count of `value`. */
  count(value: string, by = 1): void {
    const slot = this.counts.get(value);
    if (slot) slot.n += by;
    else this.counts.set(value, { n: by });
  }

  /** Moves the counts into `counter` (its collect hook). */
  flush(counter: Counter<T>): void {
    for (const [value, slot] of this.counts) {
      if (slot.n === 0) continue;
      counter.inc({ [this.label]: value } as Partial<Record<T, string>>, slot.n);
      slot.n = 0;
    }
  }
}

/** The gateway's core metrics; `registry` is where every module of this gateway registers its own. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections: Gauge;
  readonly framesIn: Counter<'kind'>;
  readonly framesOut: Counter<'kind'>;
  /** framesIn and framesOut by body kind, for the per-frame paths (added at each scrape). */
  readonly framesInByKind = new LabelCounts('kind');
  readonly framesOutByKind = new LabelCounts('kind');
  readonly upgradeRejections: Counter<'reason'>;
  readonly errors: Counter<'code'>;
  readonly closes: Counter<'code'>;
  readonly httpRequests: Counter<'route' | 'status'>;
  readonly credentialChecks: Counter<'result'>;
  private readonly loopDelay: IntervalHistogram;
  private sendBuffers: () => Iterable<number> = () => [];

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.connections = new Gauge({ name: 'relaygate_connections', help: 'open WebSocket connections', registers });
    const framesIn = this.framesInByKind;
    const framesOut = this.framesOutByKind;
    this.framesIn = new Counter({
      name: 'relaygate_frames_in_total', help: 'client frames received, by body kind', labelNames: ['kind'], registers,
      collect() {
        framesIn.flush(this);
      },
    });
    this.framesOut = new Counter({
      name: 'relaygate_frames_out_total', help: 'server frames sent, by body kind', labelNames: ['kind'], registers,
      collect() {
        framesOut.flush(this);
      },
    });
    this.upgradeRejections = new Counter({ name: 'relaygate_upgrade_rejections_total', help: 'refused WebSocket upgrades, by reason', labelNames: ['reason'], registers });
    this.errors = new Counter({ name: 'relaygate_errors_total', help: 'Error frames and HTTP error answers, by code', labelNames: ['code'], registers });
    this.closes = new Counter({ name: 'relaygate_closes_total', help: 'closed connections, by close code', labelNames: ['code'], registers });
    this.credentialChecks = new Counter({ name: 'relaygate_credential_checks_total', help: 'bearer token checks at upgrade and on HTTP: verified (signature checked) or cached (accepted from a verification within the last minute)', labelNames: ['result'], registers });
    this.httpRequests = new Counter({ name: 'relaygate_http_requests_total', help: 'HTTP requests, by route and status', labelNames: ['route', 'status'], registers });

    const metrics = this;
    new Gauge({
      name: 'relaygate_send_buffer_bytes',
      help: 'bytes accepted for sending and not yet written to the network: sum over connections, and the largest one',
      labelNames: ['stat'],
      registers,
      collect() {
        let sum = 0;
        let max = 0;
        for (const bytes of metrics.sendBuffers()) {
          sum += bytes;
          if (bytes > max) max = bytes;
        }
        this.set({ stat: 'sum' }, sum);
        this.set({ stat: 'max' }, max);
      },
    });

    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
    const loopDelay = this.loopDelay;
    new Gauge({
      name: 'relaygate_event_loop_delay_seconds',
      help: 'event-loop delay since the previous scrape, by quantile',
      labelNames: ['quantile'],
      registers,
      collect() {
        // The histogram reports nanoseconds; reset per scrape so each sample covers one interval.
        for (const q of [0.5, 0.99]) this.set({ quantile: String(q) }, loopDelay.percentile(q * 100) / 1e9);
        this.set({ quantile: '1' }, loopDelay.max / 1e9);
        loopDelay.reset();
      },
    });
  }

  /** Tells the send-buffer gauge where to read each open connection's unsent bytes at scrape time. */
  watchSendBuffers(source: () => Iterable<number>): void {
    this.sendBuffers = source;
  }

  /** The text exposition of every metric in the registry. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops the event-loop monitor. */
  close(): void {
    this.loopDelay.disable();
  }
}
