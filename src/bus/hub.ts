// The hub: topic <-> local sessions. Reference-counts bus channels across this instance's sessions,
// hands each bus event to the transport's fan-out once, replays history on recover, and closes
// sessions of a topic whose offsets skip (4010).
import { Close, Code, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AckBody, EventBody, StreamPosition } from '../protocol/frames.js';
import type { EventsService, PublishOptions } from '../router/services.js';
import type { Fanout, Session } from '../router/session.js';
import type { Bus, BusHandler } from './bus.js';
import type { HistoryPolicy } from './history-policy.js';
import { BusMetrics } from './metrics.js';
import { planJoin } from './recovery.js';

/** The fan-out group name of a tenant's topic (also the uWS topic stem the transport derives). */
export function topicKey(tenant: string, topic: string): string {
  return `${tenant}:${topic}`;
}

interface PendingJoin {
  readonly session: Session;
  /** Live events that arrived while this join read the topic's history. */
  readonly captured: EventBody[];
  done?: Promise<AckBody>;
}

interface TopicState {
  readonly tenant: string;
  readonly topic: string;
  readonly key: string;
  readonly joined: Set<Session>;
  readonly pending: Map<Session, PendingJoin>;
  /** Newest position seen on this topic; the baseline of gap detection. */
  last: StreamPosition | undefined;
  /** Bus breaks counted when `last` was seen. */
  lastBreaks: number;
}

/** What the hub needs besides its bus and fan-out. */
export interface HubOptions {
  readonly history: HistoryPolicy;
  readonly log: Logger;
  readonly metrics?: BusMetrics;
}

/** EventsService over a Bus: one bus channel per topic per instance, one fan-out call per event. */
export class EventsHub implements EventsService, BusHandler {
  private readonly topics = new Map<string, TopicState>();
  private readonly bySession = new Map<Session, Set<string>>();
  /** Breaks of the bus link so far. */
  private breaks = 0;
  private readonly metrics: BusMetrics;
  private readonly log: Logger;
  private readonly policy: HistoryPolicy;

  constructor(private readonly bus: Bus, private readonly fanout: Fanout, options: HubOptions) {
    this.policy = options.history;
    this.log = options.log;
    this.metrics = options.metrics ?? new BusMetrics();
    bus.setHandler(this);
  }

  subscribe(session: Session, tenant: string, topic: string, recover: boolean, since: StreamPosition | undefined): Promise<AckBody> {
    const key = topicKey(tenant, topic);
    let state = this.topics.get(key);
    if (state) {
      const pending = state.pending.get(session);
      if (pending?.done) return pending.done;
      // Already subscribed: the subscription stands as it is.
      if (state.joined.has(session)) return Promise.resolve(state.last ? { position: { ...state.last } } : {});
    } else {
      state = { tenant, topic, key, joined: new Set(), pending: new Map(), last: undefined, lastBreaks: this.breaks };
      this.topics.set(key, state);
    }
    const join: PendingJoin = { session, captured: [] };
    state.pending.set(session, join);
    let keys = this.bySession.get(session);
    if (!keys) this.bySession.set(session, (keys = new Set()));
    keys.add(key);
    this.metrics.subscriptions.inc();
    join.done = this.join(state, join, recover, since);
    return join.done;
  }

  private async join(state: TopicState, join: PendingJoin, recover: boolean, since: StreamPosition | undefined): Promise<AckBody> {
    const { session } = join;
    try {
      await this.bus.subscribe(state.tenant, state.topic);
      const retention = this.policy.retentionFor(state.topic);
      let replay: EventBody[] = [];
      let ack: AckBody = {};
      if (recover || retention) {
        const after = recover && (since?.epoch ?? '') !== '' ? since!.offset : recover ? 0 : Infinity;
        const history = await this.bus.history(state.tenant, state.topic, after);
        ({ replay, ack } = planJoin(history, join.captured, recover, since, retention !== undefined));
      }
      if (state.pending.get(session) !== join) return ack; // unsubscribed or dropped meanwhile
      // Replay, Ack (sent by the caller in the same microtask run) and joining happen without
      // yielding to I/O, so no live event can fall between them or arrive twice.
      for (const event of replay) session.send({ id: 0, event });
      if (replay.length > 0) this.metrics.replayed.inc(replay.length);
      // A replay past the send-buffer limit closes the session (4008), which drops it from here.
      if (state.pending.get(session) !== join) return ack;
      state.pending.delete(session);
      state.joined.add(session);
      session.joinTopic(state.key);
      const p = ack.position;
      if (p && (!state.last || state.last.epoch !== p.epoch || state.last.offset < p.offset)) {
        state.last = { ...p };
        state.lastBreaks = this.breaks;
      }
      return ack;
    } catch (err) {
      if (state.pending.get(session) === join) this.remove(state, session, false);
      throw err instanceof GatewayError ? err : new GatewayError(Code.UNAVAILABLE, 'event bus unavailable', { cause: err, retryAfterMs: 1000 });
    }
  }

  unsubscribe(session: Session, tenant: string, topic: string): void {
    const state = this.topics.get(topicKey(tenant, topic));
    if (state) this.remove(state, session, session.isOpen);
  }

  dropSession(session: Session): void {
    const keys = this.bySession.get(session);
    if (!keys) return;
    for (const key of [...keys]) {
      const state = this.topics.get(key);
      if (state) this.remove(state, session, false);
    }
    this.bySession.delete(session);
  }

  /** `options.job`: a job topic (Invoke.job_topic), kept in history per RELAYGATE_JOB_HISTORY unless a pattern says otherwise. */
  async publish(tenant: string, topic: string, payload: Uint8Array, contentType: string, options?: PublishOptions): Promise<StreamPosition | undefined> {
    const retention = this.policy.retentionFor(topic) ?? (options?.job ? this.policy.job : undefined);
    const event: EventBody = { topic, payload, contentType, publishedMs: Date.now() };
    const position = await this.bus.publish(tenant, topic, event, retention);
    this.metrics.publishedBySource.count(options?.source ?? (options?.job ? 'job' : 'api'));
    return position;
  }

  ready(): boolean {
    return this.bus.ready();
  }

  async close(): Promise<void> {
    await this.bus.close();
  }

  /** Bus callback: one event for a topic this instance listens on. */
  onEvent(tenant: string, topic: string, event: EventBody): void {
    const state = this.topics.get(topicKey(tenant, topic));
    if (!state) {
      this.metrics.dropped.inc({ reason: 'unsubscribed' });
      return;
    }
    const kind = event.position ? 'history' : 'plain';
    this.metrics.receivedByKind.count(kind);
    const p = event.position;
    if (p) {
      const last = state.last;
      if (last && last.epoch === p.epoch && p.offset <= last.offset) {
        this.metrics.dropped.inc({ reason: 'duplicate' });
        return;
      }
      // A new epoch starting at 1 is a stream that expired while quiet, unless the bus link broke
      // meanwhile: then the stream may have been lost with Redis's data, and events with it.
      const gap = last !== undefined && (last.epoch === p.epoch
        ? p.offset > last.offset + 1
        : p.offset !== 1 || state.lastBreaks !== this.breaks);
      state.last = { offset: p.offset, epoch: p.epoch };
      state.lastBreaks = this.breaks;
      if (gap) this.closeForGap(state, { expected: last!.offset + 1, got: p.offset });
    }
    for (const join of state.pending.values()) join.captured.push(event);
    if (state.joined.size > 0) {
      this.fanout.publish(state.key, { id: 0, event });
      this.metrics.deliveredByKind.count(kind, state.joined.size);
    }
  }

  /** Bus callback: the link broke. */
  onBreak(): void {
    this.breaks++;
  }

  /** Bus callback: after a break, history topics whose stream moved on (or vanished) lost events. */
  onResync(topics: ReadonlyArray<{ tenant: string; topic: string }>): void {
    for (const { tenant, topic } of topics) {
      const state = this.topics.get(topicKey(tenant, topic));
      const seen = state?.last;
      if (!state || !seen || state.joined.size === 0) continue;
      this.bus.history(tenant, topic, Infinity).then(
        (h) => {
          const now = state.last;
          if (!now) return;
          if (h.epoch !== now.epoch || h.top > now.offset) this.closeForGap(state, { expected: now.offset + 1, got: h.top, epochChanged: h.epoch !== now.epoch });
        },
        (err: unknown) => this.log.warn({ err, tenant, topic }, 'history check after bus resync failed'),
      );
    }
  }

  private closeForGap(state: TopicState, detail: Record<string, unknown>): void {
    const sessions = [...state.joined];
    if (sessions.length === 0) return;
    this.log.warn({ tenant: state.tenant, topic: state.topic, sessions: sessions.length, ...detail }, 'events lost on a live subscription; closing its sessions with 4010');
    this.metrics.gapCloses.inc(sessions.length);
    for (const s of sessions) {
      this.remove(state, s, false);
      s.close(Close.BUS_GAP);
    }
  }

  private remove(state: TopicState, session: Session, leave: boolean): void {
    const wasJoined = state.joined.delete(session);
    const wasPending = state.pending.delete(session);
    if (!wasJoined && !wasPending) return;
    if (wasJoined && leave) session.leaveTopic(state.key);
    this.metrics.subscriptions.dec();
    const keys = this.bySession.get(session);
    keys?.delete(state.key);
    if (keys && keys.size === 0) this.bySession.delete(session);
    if (state.joined.size === 0 && state.pending.size === 0) {
      this.topics.delete(state.key);
      this.bus.unsubscribe(state.tenant, state.topic);
    }
  }
}
