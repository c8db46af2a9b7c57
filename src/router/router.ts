// Frame kind -> compute | subscribe | publish | ping | refresh, with the per-connection limits of
// spec section 3: ids in flight, max in flight, rate limit, protocol violations and credential expiry.
import type { Principal, TokenVerifier } from '../auth/principal.js';
import { Close, Code, codeName, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { decodeClientFrame, decodeClientFrameJson, DecodeError } from '../protocol/codec.js';
import type { ClientFrame, ClientFrameKind, ResultBody, ServerFrame } from '../protocol/frames.js';
import type { Invocation, Invoker, InvokeOutcome } from './invoke.js';
import { StrikeWindow, TokenBucket } from './limits.js';
import { checkTopic, checkTopicGrant } from './requests.js';
import type { EventsService } from './services.js';
import type { Session } from './session.js';

/** Suggested wait (retry_after_ms) when a connection already has max_in_flight requests running. */
export const IN_FLIGHT_RETRY_AFTER_MS = 100;
/** Suggested wait when a connection holds max subscriptions: retry after unsubscribing from one. */
export const SUBSCRIPTIONS_RETRY_AFTER_MS = 1000;
/** Suggested wait when the gateway is draining: reconnect, then retry elsewhere. */
export const DRAINING_RETRY_AFTER_MS = 100;

/** The per-connection limits (settings of the same names). */
export interface RouterOptions {
  maxInFlight: number;
  /** Topics one connection may hold subscriptions to (subscribed or being subscribed). */
  maxSubscriptions: number;
  rateLimit: number;
  rateBurst: number;
  rateStrikes: number;
  violationLimit: number;
  violationWindow: number;
}

interface Pending {
  readonly kind: ClientFrameKind;
  invocation?: Invocation;
}

/** An Invoke in flight on a connection: its Pending entry and the sink of its answers in one object. */
class PendingInvoke implements Pending, InvokeOutcome {
  readonly kind = 'invoke' as const;
  invocation?: Invocation;

  constructor(private readonly router: Router, private readonly conn: Connection, private readonly id: number) {}

  progress(fraction: number, payload: Uint8Array): void {
    this.conn.session.send({ id: this.id, progress: { fraction, payload } });
  }

  result(result: ResultBody): void {
    this.settle();
    this.conn.session.send({ id: this.id, result });
  }

  error(err: GatewayError): void {
    this.settle();
    this.router.answerError(this.conn, this.id, err);
  }

  /** Frees the id, unless the connection closed (or the id was reused) meanwhile. */
  settle(): void {
    if (this.conn.inFlight.get(this.id) === this) this.conn.inFlight.delete(this.id);
  }
}

/** The router's state of one client connection. */
export class Connection {
  readonly inFlight = new Map<number, Pending>();
  /** Topics subscribed or being subscribed, counted against maxSubscriptions. */
  readonly topics = new Set<string>();
  readonly bucket: TokenBucket;
  readonly rateStrikes: StrikeWindow;
  readonly violations: StrikeWindow;
  expiryTimer: NodeJS.Timeout | undefined;

  constructor(readonly session: Session, options: RouterOptions, nowMs: number) {
    this.bucket = new TokenBucket(options.rateLimit, options.rateBurst, nowMs);
    this.rateStrikes = new StrikeWindow(options.rateStrikes, options.violationWindow);
    this.violations = new StrikeWindow(options.violationLimit, options.violationWindow);
  }
}

// setTimeout takes at most a signed 32-bit delay; longer expiries re-arm.
const MAX_TIMER_MS = 2 ** 31 - 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Dispatches decoded client frames; every request gets exactly one answer while the connection lives. */
export class Router {
  private readonly connections = new Set<Connection>();
  private draining = false;

  constructor(
    private readonly options: RouterOptions,
    private readonly verifier: TokenVerifier,
    private readonly events: EventsService,
    private readonly invoker: Invoker,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {}

  /** Registers a newly opened session and arms its credential-expiry close (4001). */
  open(session: Session): Connection {
    const conn = new Connection(session, this.options, Date.now());
    this.connections.add(conn);
    this.armExpiry(conn);
    return conn;
  }

  /**
   * Handles one WebSocket message. A text message may be a transient view (it is decoded at once);
   * a binary one must be memory the caller owns, since decoded bytes fields are views into it.
   */
  message(conn: Connection, data: Uint8Array, isBinary: boolean): void {
    if (!conn.session.isOpen) return;
    const now = Date.now();
    let frame: ClientFrame;
    try {
      frame = this.decode(conn, data, isBinary);
    } catch (err) {
      this.metrics.framesInByKind.count('malformed');
      const id = err instanceof DecodeError ? err.id : 0;
      if (!this.admit(conn, id, now)) return;
      this.violation(conn, id, err instanceof DecodeError ? err.message : 'malformed frame', now);
      return;
    }
    this.metrics.framesInByKind.count(frame.kind);
    if (!this.admit(conn, frame.id, now)) return;
    try {
      this.dispatch(conn, frame, now);
    } catch (err) {
      // A defect below must cost one answer, not the process (this runs in a uWS callback).
      this.reply(conn, frame.id, err);
    }
  }

  /** Forgets a closed session: aborts its requests in flight and drops its subscriptions. */
  closed(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    clearTimeout(conn.expiryTimer);
    const gone = new GatewayError(Code.CANCELLED, 'client disconnected');
    for (const pending of conn.inFlight.values()) pending.invocation?.end(gone);
    conn.inFlight.clear();
    try {
      this.events.dropSession(conn.session);
    } catch (err) {
      this.log.error({ err, session: conn.session.id }, 'dropping subscriptions failed');
    }
  }

  /** Open connections. */
  get size(): number {
    return this.connections.size;
  }

  /** Requests in flight on every connection (invocations, subscribes, publishes, refreshes). */
  get inFlight(): number {
    let n = 0;
    for (const conn of this.connections) n += conn.inFlight.size;
    return n;
  }

  /** From now on new Invokes are refused with UNAVAILABLE; every client is told to reconnect elsewhere. */
  startDrain(reconnectWithinMs: number): void {
    this.draining = true;
    const frame: ServerFrame = { id: 0, goAway: { reconnectWithinMs, reason: 'gateway shutting down' } };
    for (const conn of this.connections) conn.session.send(frame);
  }

  /** Every open session, for closing on drain. */
  sessions(): Session[] {
    return [...this.connections].map((c) => c.session);
  }

  private decode(conn: Connection, data: Uint8Array, isBinary: boolean): ClientFrame {
    if (conn.session.subprotocol === 'proto') {
      if (!isBinary) throw new DecodeError('relaygate.v1.proto takes binary messages', 0);
      return decodeClientFrame(data);
    }
    if (isBinary) throw new DecodeError('relaygate.v1.json takes text messages', 0);
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      throw new DecodeError('malformed frame: not UTF-8', 0);
    }
    return decodeClientFrameJson(text);
  }

  /** Token-bucket admission; a refused frame gets RESOURCE_EXHAUSTED, repeated refusals close 4029. */
  private admit(conn: Connection, id: number, now: number): boolean {
    const waitMs = conn.bucket.take(now);
    if (waitMs === 0) return true;
    this.reply(conn, id, new GatewayError(Code.RESOURCE_EXHAUSTED, 'rate limit exceeded', { retryAfterMs: waitMs }));
    if (conn.rateStrikes.strike(now)) conn.session.close(Close.RATE_LIMITED);
    return false;
  }

  /** A protocol violation: INVALID_ARGUMENT, and close 4400 once they repeat. */
  private violation(conn: Connection, id: number, message: string, now: number): void {
    this.reply(conn, id, new GatewayError(Code.INVALID_ARGUMENT, message));
    if (conn.violations.strike(now)) conn.session.close(Close.PROTOCOL_VIOLATIONS);
  }

  private dispatch(conn: Connection, frame: ClientFrame, now: number): void {
    if (frame.kind === 'none') return this.violation(conn, frame.id, 'frame carries no body', now);
    if (frame.id === 0) return this.violation(conn, 0, 'a request needs an id > 0', now);
    if (conn.inFlight.has(frame.id)) return this.violation(conn, frame.id, `id ${frame.id} is already in flight`, now);
    const session = conn.session;
    switch (frame.kind) {
      case 'ping':
        session.send({ id: frame.id, pong: { clientTimeMs: frame.clientTimeMs, serverTimeMs: Date.now() } });
        return;
      case 'cancel':
        return this.cancel(conn, frame.id, frame.targetId);
      case 'unsubscribe':
        return this.answer(conn, frame.id, () => {
          checkTopic(frame.topic);
          this.events.unsubscribe(session, session.principal.tenant, frame.topic);
          conn.topics.delete(frame.topic);
          return {};
        });
      default:
        break;
    }
    if (conn.inFlight.size >= this.options.maxInFlight) {
      this.reply(conn, frame.id, new GatewayError(Code.RESOURCE_EXHAUSTED, `more than ${this.options.maxInFlight} requests in flight`, { retryAfterMs: IN_FLIGHT_RETRY_AFTER_MS }));
      return;
    }
    switch (frame.kind) {
      case 'invoke':
        return this.invoke(conn, frame, now);
      case 'subscribe': {
        const principal = session.principal;
        const topic = frame.topic;
        return this.track(conn, frame.id, 'subscribe', () => {
          checkTopicGrant(principal, 'subscribe', topic);
          const isNew = !conn.topics.has(topic);
          if (isNew && conn.topics.size >= this.options.maxSubscriptions) {
            throw new GatewayError(Code.RESOURCE_EXHAUSTED, `more than ${this.options.maxSubscriptions} subscriptions on one connection`, { retryAfterMs: SUBSCRIPTIONS_RETRY_AFTER_MS });
          }
          conn.topics.add(topic);
          return this.events.subscribe(session, principal.tenant, topic, frame.recover, frame.since).then(
            (ack) => {
              // The session may have closed while the bus answered; its subscription must not outlive it.
              if (!session.isOpen) this.events.unsubscribe(session, principal.tenant, topic);
              return ack;
            },
            (err: unknown) => {
              if (isNew) conn.topics.delete(topic);
              throw err;
            },
          );
        });
      }
      case 'publish': {
        const principal = session.principal;
        return this.track(conn, frame.id, 'publish', async () => {
          checkTopicGrant(principal, 'publish', frame.topic);
          const position = await this.events.publish(principal.tenant, frame.topic, frame.payload, frame.contentType, { source: 'ws' });
          return { position };
        });
      }
      case 'refresh':
        return this.track(conn, frame.id, 'refresh', () => this.refresh(conn, frame.token));
    }
  }

  private invoke(conn: Connection, frame: Extract<ClientFrame, { kind: 'invoke' }>, now: number): void {
    const id = frame.id;
    if (this.draining) {
      this.reply(conn, id, new GatewayError(Code.UNAVAILABLE, 'gateway shutting down', { retryAfterMs: DRAINING_RETRY_AFTER_MS }));
      return;
    }
    const pending = new PendingInvoke(this, conn, id);
    conn.inFlight.set(id, pending);
    try {
      pending.invocation = this.invoker.start(conn.session.principal, frame.invoke, pending, now);
    } catch (err) {
      pending.settle();
      this.reply(conn, id, err);
    }
  }

  private cancel(conn: Connection, id: number, targetId: number): void {
    if (targetId === 0) return this.reply(conn, id, new GatewayError(Code.INVALID_ARGUMENT, 'cancel needs a target_id > 0'));
    const target = conn.inFlight.get(targetId);
    if (target && target.kind !== 'invoke') {
      return this.reply(conn, id, new GatewayError(Code.INVALID_ARGUMENT, 'only an Invoke can be cancelled'));
    }
    // Cancelling what already ended is not an error: the client cannot know it raced the answer.
    conn.session.send({ id, ack: {} });
    target?.invocation?.end(new GatewayError(Code.CANCELLED, 'cancelled by the client'));
  }

  private async refresh(conn: Connection, token: string): Promise<Record<string, never>> {
    const current = conn.session.principal;
    let next: Principal;
    try {
      next = await this.verifier.verify(token);
    } catch (err) {
      if (err instanceof GatewayError && err.code === Code.UNAUTHENTICATED) throw err;
      this.log.warn({ err, session: conn.session.id }, 'refresh credential could not be verified');
      throw new GatewayError(Code.UNAUTHENTICATED, 'credential could not be verified');
    }
    if (next.subject !== current.subject || next.tenant !== current.tenant) {
      throw new GatewayError(Code.UNAUTHENTICATED, 'refresh must name the same subject and tenant');
    }
    if (!conn.session.isOpen) return {};
    conn.session.principal = next;
    this.armExpiry(conn);
    return {};
  }

  /** Runs a synchronous request and answers it with its Ack or Error. */
  private answer(conn: Connection, id: number, run: () => ServerAck): void {
    try {
      conn.session.send({ id, ack: run() });
    } catch (err) {
      this.reply(conn, id, err);
    }
  }

  /** Runs an asynchronous request, keeping its id in flight until its one Ack or Error is sent. */
  private track(conn: Connection, id: number, kind: ClientFrameKind, run: () => Promise<ServerAck>): void {
    const pending: Pending = { kind };
    conn.inFlight.set(id, pending);
    const settle = (): boolean => {
      if (conn.inFlight.get(id) !== pending) return false; // the connection closed meanwhile
      conn.inFlight.delete(id);
      return true;
    };
    let promise: Promise<ServerAck>;
    try {
      promise = run();
    } catch (err) {
      settle();
      return this.reply(conn, id, err);
    }
    promise.then(
      (ack) => {
        if (settle()) conn.session.send({ id, ack });
      },
      (err: unknown) => {
        if (settle()) this.reply(conn, id, err);
      },
    );
  }

  /** @internal the Error answer of a request that ended elsewhere (an invocation). */
  answerError(conn: Connection, id: number, err: unknown): void {
    this.reply(conn, id, err);
  }

  /** Sends an Error frame; unknown errors become INTERNAL here, their cause logged and never sent. */
  private reply(conn: Connection, id: number, err: unknown): void {
    const failure = toGatewayError(err);
    if (failure.code === Code.INTERNAL) this.log.error({ err: failure.cause ?? failure, session: conn.session.id, id }, 'request failed');
    if (!conn.session.isOpen) return;
    this.metrics.errors.inc({ code: codeName(failure.code) });
    conn.session.send({
      id,
      error: { code: failure.code, message: failure.message, ...(failure.retryAfterMs ? { retryAfterMs: failure.retryAfterMs } : {}) },
    });
  }

  private armExpiry(conn: Connection): void {
    clearTimeout(conn.expiryTimer);
    const left = conn.session.principal.expiresAtMs - Date.now();
    if (left <= 0) {
      conn.session.close(Close.TOKEN_EXPIRED);
      return;
    }
    conn.expiryTimer = setTimeout(() => this.armExpiry(conn), Math.min(left, MAX_TIMER_MS));
    conn.expiryTimer.unref();
  }
}

type ServerAck = Extract<ServerFrame, { ack: unknown }>['ack'];
