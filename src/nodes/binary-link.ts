// The gateway side of the binary node link (relaygate+tcp://host:port, relaygate+tls://host:port):
// a few persistent connections per node, requests multiplexed by id and spread across them,
// writes batched once per event-loop turn, keepalive pings that catch half-open connections, and
// reconnect with backoff. Every call gets exactly one answer; it is `unsent` (retryable) only
// while its request frame still waited in the batch when the connection died.
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { Code, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { linkFrameSizeBound, linkProtocolVersion, type LinkMessage } from '../protocol/link-codec.js';
import { defaultLinkMaxFrameBytes } from '../protocol/link-framing.js';
import { LinkWire } from './binary-link-wire.js';
import type { NodeCall, NodeCallHandler, NodeFailure, NodeLink } from './node-link.js';

/** URL schemes served by BinaryNodeLink. */
export const binaryLinkSchemes = ['relaygate+tcp:', 'relaygate+tls:'] as const;

export interface BinaryLinkOptions {
  /** Connections kept open to the node; requests are spread across them (default 4). */
  readonly connections?: number;
  /** Requests in flight per connection from this side (the node's hello may lower it; default 1024). */
  readonly maxInFlight?: number;
  /** Calls waiting for a free connection before RESOURCE_EXHAUSTED (default 4096). */
  readonly maxWaiting?: number;
  /** Connect plus hello exchange (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** Keepalive ping on a connection silent this long (default 2 s). */
  readonly pingIntervalMs?: number;
  /** A connection whose ping is unanswered this long is dead: half-open detection (default 6 s). */
  readonly pongTimeoutMs?: number;
  /** First reconnect delay, doubled per failure up to reconnectMaxMs (defaults 100 ms, 5 s). */
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
  /** Largest frame accepted from the node (default 64 MiB). */
  readonly maxFrameBytes?: number;
  /** Sent in the hello, for the node's logs. */
  readonly gatewayId?: string;
  /** Extra TLS options for relaygate+tls:// (e.g. `ca`); system roots otherwise. */
  readonly tls?: ConnectionOptions;
  /** What the node announced in its hello (id, functions, weight, draining), on every (re)connect. */
  readonly onNodeInfo?: (info: BinaryLinkNodeInfo) => void;
  readonly log?: Logger;
}

/** The node's self-description from its hello. */
export interface BinaryLinkNodeInfo {
  readonly nodeId: string;
  readonly functions: readonly string[];
  readonly weight: number;
  readonly draining: boolean;
}

/** One call on the link; it is its own abort listener and deadline timer argument, so no closures per call. */
class Call {
  id = 0;
  conn: Connection | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  listening = false;
  done = false;

  constructor(
    readonly call: NodeCall,
    readonly handler: NodeCallHandler,
    readonly frame: LinkMessage,
    private readonly giveUp: (c: Call, f: NodeFailure) => void,
  ) {}

  /** The caller's signal fired: Cancel, client disconnect or gateway drain. */
  handleEvent(): void {
    this.listening = false;
    this.giveUp(this, failure(Code.CANCELLED, 'cancelled', false, false, false));
  }

  expire(): void {
    this.timer = undefined;
    this.giveUp(this, failure(Code.DEADLINE_EXCEEDED, 'deadline exceeded', false, false, false));
  }
}

function expireCall(c: Call): void {
  c.expire();
}

interface Connection {
  readonly slot: number;
  wire: LinkWire | undefined;
  ready: boolean;
  readonly calls: Map<number, Call>;
  maxInFlight: number;
  /** Largest frame the node accepts (its hello). */
  peerMaxFrameBytes: number;
  nextId: number;
  lastHeardAt: number;
  /** When the unanswered keepalive ping went out (0 = none outstanding). */
  pingSentAt: number;
  /** Health checks waiting for a pong, by nonce. */
  readonly pongWaiters: Map<number, () => void>;
  /** Connection attempts in a row that did not last (drives the backoff). */
  failures: number;
  readyAt: number;
  retryTimer: NodeJS.Timeout | undefined;
}

const emptyPayload = Buffer.alloc(0);

/** The binary link to one node: NodeLink over a few multiplexed, persistent connections. */
export class BinaryNodeLink implements NodeLink {
  private readonly conns: Connection[] = [];
  private readonly waiting: Call[] = [];
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private readonly keepalive: NodeJS.Timeout;
  private readonly o: Required<Omit<BinaryLinkOptions, 'tls' | 'onNodeInfo' | 'log' | 'gatewayId'>>;
  private closed = false;
  private draining = false;
  /** The functions the node's hello listed; undefined until a hello, or when it listed none. */
  private functions: readonly string[] | undefined;
  /** No connection is ready and the last attempt on every one failed: calls fail fast (unsent). */
  private down = false;
  private nodeId: string;
  private rotate = 0;
  private nonce = 0;
  private readyWaiters: (() => void)[] = [];
  private readonly giveUp = (c: Call, f: NodeFailure): void => this.cancelOnNode(c, f);

  constructor(readonly url: string, private readonly opts: BinaryLinkOptions = {}) {
    const u = new URL(url);
    if (!(binaryLinkSchemes as readonly string[]).includes(u.protocol)) throw new Error(`not a node link URL: ${u.protocol}//`);
    if (!u.port) throw new Error('a node link URL needs a port');
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(u.port);
    this.secure = u.protocol === 'relaygate+tls:';
    this.nodeId = `${u.protocol}//${u.host}`;
    this.o = {
      connections: opts.connections ?? 4,
      maxInFlight: opts.maxInFlight ?? 1024,
      maxWaiting: opts.maxWaiting ?? 4096,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      pingIntervalMs: opts.pingIntervalMs ?? 2000,
      pongTimeoutMs: opts.pongTimeoutMs ?? 6000,
      reconnectBaseMs: opts.reconnectBaseMs ?? 100,
      reconnectMaxMs: opts.reconnectMaxMs ?? 5000,
      maxFrameBytes: opts.maxFrameBytes ?? defaultLinkMaxFrameBytes,
    };
    for (let slot = 0; slot < this.o.connections; slot++) {
      const conn: Connection = {
        slot, wire: undefined, ready: false, calls: new Map(), maxInFlight: this.o.maxInFlight, peerMaxFrameBytes: defaultLinkMaxFrameBytes, nextId: 1,
        lastHeardAt: 0, pingSentAt: 0, pongWaiters: new Map(), failures: 0, readyAt: 0, retryTimer: undefined,
      };
      this.conns.push(conn);
      this.open(conn);
    }
    const tick = Math.max(10, Math.min(this.o.pingIntervalMs, this.o.pongTimeoutMs) / 2);
    this.keepalive = setInterval(() => this.checkLiveness(), tick);
    this.keepalive.unref();
  }

  /** Calls in flight on the node plus those waiting for a connection. */
  get inFlight(): number {
    let n = this.waiting.length;
    for (const c of this.conns) n += c.calls.size;
    return n;
  }

  /** Calls waiting for a free connection slot (a metric). */
  pending(): number {
    return this.waiting.length;
  }

  /** The node announced drain (or said so in its hello): it takes no new work. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Connections that completed the hello exchange. */
  get readyConnections(): number {
    return this.conns.filter((c) => c.ready).length;
  }

  call(call: NodeCall, handler: NodeCallHandler): void {
    if (this.closed) return handler.onError(failure(Code.UNAVAILABLE, 'node link closed', true, true, false));
    if (this.draining) return handler.onError(failure(Code.UNAVAILABLE, 'node is draining', true, false, true));
    // Cancelled or expired calls are never retried, so they are not reported as unsent.
    if (call.signal.aborted) return handler.onError(failure(Code.CANCELLED, 'cancelled', false, false, false));
    const left = call.deadlineAtMs - Date.now();
    if (left <= 0) return handler.onError(failure(Code.DEADLINE_EXCEEDED, 'deadline exceeded', false, false, false));
    const frame: LinkMessage = {
      id: 0,
      request: {
        function: call.function, payload: call.payload, contentType: call.contentType, deadlineMs: 0,
        subject: call.subject, tenant: call.tenant, metadata: call.metadata as Record<string, string>, requestId: call.requestId,
      },
    };
    const c = new Call(call, handler, frame, this.giveUp);
    c.timer = setTimeout(expireCall, left, c);
    call.signal.addEventListener('abort', c, { once: true });
    c.listening = true;
    const conn = this.pick();
    if (conn) return this.dispatch(conn, c);
    if (this.down) return this.end(c, failure(Code.UNAVAILABLE, 'node link unreachable', true, true, false));
    if (this.waiting.length >= this.o.maxWaiting) {
      return this.end(c, failure(Code.RESOURCE_EXHAUSTED, 'node link queue full', true, false, false, 100));
    }
    this.waiting.push(c);
  }

  /** The functions the node said it serves in its hello, so the balancer routes only those to it. */
  advertisedFunctions(): readonly string[] | undefined {
    return this.functions;
  }

  async checkHealth(timeoutMs: number): Promise<boolean> {
    if (this.closed || this.draining) return false;
    const deadline = Date.now() + timeoutMs;
    let conn = this.pick(true);
    if (!conn) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.readyWaiters.push(() => { clearTimeout(t); resolve(); });
      });
      conn = this.pick(true);
      if (!conn) return false;
    }
    const nonce = (this.nonce = (this.nonce + 1) >>> 0 || 1);
    const wire = conn.wire!;
    const answered = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => { conn.pongWaiters.delete(nonce); resolve(false); }, Math.max(1, deadline - Date.now()));
      conn.pongWaiters.set(nonce, () => { clearTimeout(t); resolve(true); });
      wire.send({ id: 0, ping: { nonce } });
    });
    return answered && !this.draining && !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    for (const c of this.waiting.splice(0)) this.end(c, failure(Code.UNAVAILABLE, 'node link closed', true, true, false));
    const ends: Promise<void>[] = [];
    for (const conn of this.conns) {
      clearTimeout(conn.retryTimer);
      const wire = conn.wire;
      if (!wire) continue;
      ends.push(new Promise((resolve) => { wire.socket.once('close', () => resolve()); }));
      wire.destroy(new Error('node link closed'));
    }
    this.wakeReadyWaiters();
    await Promise.all(ends);
  }

  /** The ready connection with the fewest calls and room for one more; ties rotate. */
  private pick(ignoreLimit = false): Connection | undefined {
    let best: Connection | undefined;
    const n = this.conns.length;
    const start = this.rotate++ % n;
    for (let i = 0; i < n; i++) {
      const conn = this.conns[(start + i) % n]!;
      if (!conn.ready || (!ignoreLimit && conn.calls.size >= conn.maxInFlight)) continue;
      if (!best || conn.calls.size < best.calls.size) best = conn;
    }
    return best;
  }

  private dispatch(conn: Connection, c: Call): void {
    if (linkFrameSizeBound(c.frame) > conn.peerMaxFrameBytes) {
      // Sent, the frame would make the node close a connection other calls share.
      return this.end(c, failure(Code.INVALID_ARGUMENT, `payload larger than the node accepts (${conn.peerMaxFrameBytes} bytes per frame)`, false, false, false));
    }
    let id = conn.nextId;
    while (id === 0 || conn.calls.has(id)) id = (id + 1) >>> 0;
    conn.nextId = (id + 1) >>> 0;
    c.id = id;
    (c.frame as { id: number }).id = id;
    (c.frame as { request: { deadlineMs: number } }).request.deadlineMs = Math.max(1, c.call.deadlineAtMs - Date.now());
    c.conn = conn;
    conn.calls.set(id, c);
    conn.wire!.send(c.frame);
  }

  private onMessage(conn: Connection, m: LinkMessage): void {
    conn.lastHeardAt = Date.now();
    conn.pingSentAt = 0;
    if ('hello' in m) return this.onHello(conn, m.hello);
    if (!conn.ready) return this.protocolFailure(conn, 'first frame from the node was not a hello');
    if ('result' in m) {
      const c = conn.calls.get(m.id);
      if (!c) return;
      const r = m.result;
      this.settle(c);
      const nodeId = r.nodeId || this.nodeId;
      this.deliver(() => c.handler.onResult(r.payload, r.contentType ?? '', nodeId, r.durationMs ?? 0, this.draining));
      return;
    }
    if ('progress' in m) {
      const c = conn.calls.get(m.id);
      if (c) this.deliver(() => c.handler.onProgress(m.progress.fraction, m.progress.payload ?? emptyPayload));
      return;
    }
    if ('error' in m) {
      const c = conn.calls.get(m.id);
      if (!c) return;
      const e = m.error;
      const code = knownCode(e.code);
      this.end(c, failure(code, e.message || 'node error', false, false, this.draining, e.retryAfterMs ?? 0));
      return;
    }
    if ('pong' in m) {
      const waiter = conn.pongWaiters.get(m.pong.nonce);
      if (waiter) { conn.pongWaiters.delete(m.pong.nonce); waiter(); }
      return;
    }
    if ('ping' in m) return conn.wire!.send({ id: 0, pong: { nonce: m.ping.nonce } });
    if ('drain' in m) {
      // The echo tells the node nothing follows on this connection: it may close it once the
      // requests already sent are answered.
      conn.wire!.send({ id: 0, drain: { reason: 'acknowledged' } });
      return this.onDrain(m.drain.reason);
    }
    this.protocolFailure(conn, 'unexpected frame from the node');
  }

  private onHello(conn: Connection, hello: Extract<LinkMessage, { hello: unknown }>['hello']): void {
    if (conn.ready) return this.protocolFailure(conn, 'second hello from the node');
    if (hello.version < 1) return this.protocolFailure(conn, `node speaks unsupported link version ${hello.version}`);
    conn.ready = true;
    conn.readyAt = Date.now();
    conn.maxInFlight = Math.min(this.o.maxInFlight, hello.maxInFlight || this.o.maxInFlight);
    conn.peerMaxFrameBytes = hello.maxFrameBytes || defaultLinkMaxFrameBytes;
    if (hello.nodeId) this.nodeId = hello.nodeId;
    this.down = false;
    this.draining = hello.draining ?? false;
    if (hello.functions && hello.functions.length > 0) this.functions = [...hello.functions];
    this.opts.onNodeInfo?.({ nodeId: this.nodeId, functions: hello.functions ?? [], weight: hello.weight || 1, draining: this.draining });
    this.wakeReadyWaiters();
    if (this.draining) {
      conn.wire!.send({ id: 0, drain: { reason: 'acknowledged' } });
      return this.failWaitingForDrain();
    }
    this.pumpWaiting();
  }

  private onDrain(reason: string): void {
    if (this.draining) return;
    this.draining = true;
    this.opts.log?.info({ node: this.nodeId, reason }, 'node link: node is draining');
    this.failWaitingForDrain();
    this.opts.onNodeInfo?.({ nodeId: this.nodeId, functions: [], weight: 1, draining: true });
  }

  private failWaitingForDrain(): void {
    for (const c of this.waiting.splice(0)) this.end(c, failure(Code.UNAVAILABLE, 'node is draining', true, false, true));
  }

  private pumpWaiting(): void {
    while (this.waiting.length > 0) {
      const conn = this.pick();
      if (!conn) return;
      this.dispatch(conn, this.waiting.shift()!);
    }
  }

  private open(conn: Connection): void {
    if (this.closed) return;
    const socket: Socket = this.secure
      ? connectTls({ host: this.host, port: this.port, ...(isIP(this.host) ? {} : { servername: this.host }), ...this.opts.tls })
      : connectTcp({ host: this.host, port: this.port });
    const wire = new LinkWire(socket, {
      maxFrameBytes: this.o.maxFrameBytes,
      pauseReadsWhileBlocked: false,
      onMessage: (m) => this.onMessage(conn, m),
      onClose: (err) => this.onConnectionClosed(conn, wire, err),
    });
    conn.wire = wire;
    conn.ready = false;
    conn.pingSentAt = 0;
    conn.lastHeardAt = Date.now();
    const helloTimer = setTimeout(() => {
      if (!conn.ready && conn.wire === wire) wire.destroy(new Error('node link hello timed out'));
    }, this.o.connectTimeoutMs);
    helloTimer.unref();
    socket.once('close', () => clearTimeout(helloTimer));
    wire.send({ id: 0, hello: { version: linkProtocolVersion, gatewayId: this.opts.gatewayId ?? '', maxFrameBytes: this.o.maxFrameBytes } });
  }

  private onConnectionClosed(conn: Connection, wire: LinkWire, err: Error | undefined): void {
    if (conn.wire !== wire) return;
    const wasReady = conn.ready;
    conn.wire = undefined;
    conn.ready = false;
    conn.pongWaiters.clear();
    const calls = [...conn.calls.values()];
    conn.calls.clear();
    for (const c of calls) {
      // The one place "unsent" is decided: the request frame never left the batch.
      const unsent = wire.unsent(c.frame);
      this.end(c, unsent
        ? failure(Code.UNAVAILABLE, 'node link lost before the request was sent', true, true, this.draining)
        : failure(Code.UNAVAILABLE, 'node link lost', false, true, this.draining), err);
    }
    if (this.closed) return;
    // A connection that served for a while reconnects at once; one that failed to start or died
    // young (a node that accepts and then misbehaves) backs off, so nothing spins.
    conn.failures = wasReady && Date.now() - conn.readyAt >= this.o.reconnectMaxMs ? 0 : conn.failures + 1;
    if (err && !this.draining) this.opts.log?.warn({ node: this.nodeId, slot: conn.slot, err: err.message }, 'node link connection lost');
    if (!wasReady && !this.conns.some((c) => c.ready)) this.markDown();
    const delay = conn.failures === 0 ? 0 : this.backoff(conn.failures);
    conn.retryTimer = setTimeout(() => this.open(conn), delay);
    conn.retryTimer.unref();
  }

  /** No connection can be made: calls waiting for one fail as unsent, and new calls fail fast until a hello arrives. */
  private markDown(): void {
    this.down = true;
    for (const c of this.waiting.splice(0)) this.end(c, failure(Code.UNAVAILABLE, 'node link unreachable', true, true, false));
    this.wakeReadyWaiters();
  }

  private backoff(failures: number): number {
    const cap = Math.min(this.o.reconnectMaxMs, this.o.reconnectBaseMs * 2 ** Math.min(failures - 1, 20));
    return cap / 2 + Math.random() * (cap / 2);
  }

  /** Keepalive: ping connections that went quiet; a ping unanswered past its deadline means a half-open link. */
  private checkLiveness(): void {
    const now = Date.now();
    for (const conn of this.conns) {
      if (!conn.ready || !conn.wire) continue;
      if (conn.pingSentAt > 0) {
        if (now - conn.pingSentAt >= this.o.pongTimeoutMs) {
          conn.wire.destroy(new Error(`no pong within ${this.o.pongTimeoutMs} ms (half-open link)`));
        }
      } else if (now - conn.lastHeardAt >= this.o.pingIntervalMs) {
        conn.pingSentAt = now;
        conn.wire.send({ id: 0, ping: { nonce: 0 } });
      }
    }
  }

  private protocolFailure(conn: Connection, problem: string): void {
    this.opts.log?.warn({ node: this.nodeId, problem }, 'node link protocol violation; reconnecting');
    conn.wire?.destroy(new Error(problem));
  }

  /**
   * Ends a call the gateway gave up on: a request still in the batch is withdrawn, one already
   * written gets a cancel frame so the node aborts it.
   */
  private cancelOnNode(c: Call, f: NodeFailure): void {
    if (c.done) return;
    const conn = c.conn;
    if (!conn) {
      const i = this.waiting.indexOf(c);
      if (i >= 0) this.waiting.splice(i, 1);
    } else {
      conn.calls.delete(c.id);
      const wire = conn.wire;
      if (wire && !wire.withdraw(c.frame)) wire.send({ id: c.id, cancel: {} });
    }
    this.end(c, f);
  }

  /** Releases a call's timer, listener and slot; the caller then reports its one answer. */
  private settle(c: Call): void {
    c.done = true;
    if (c.timer) clearTimeout(c.timer);
    if (c.listening) c.call.signal.removeEventListener('abort', c);
    if (c.conn) {
      c.conn.calls.delete(c.id);
      if (this.waiting.length > 0) this.pumpWaiting();
    }
  }

  private end(c: Call, f: NodeFailure, cause?: Error): void {
    if (c.done) return;
    this.settle(c);
    this.deliver(() => c.handler.onError(cause ? { ...f, error: new GatewayError(f.error.code, f.error.message, { cause }) } : f));
  }

  /** Runs a handler callback; a throwing handler is logged and never takes the connection down with it. */
  private deliver(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.log?.error({ node: this.nodeId, err }, 'node call handler threw');
    }
  }

  private wakeReadyWaiters(): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }
}

function failure(code: Code, message: string, unsent: boolean, connectionError: boolean, drain: boolean, retryAfterMs = 0): NodeFailure {
  return { error: new GatewayError(code, message, { retryAfterMs }), unsent, connectionError, drain };
}

const codes = new Set<number>(Object.values(Code));

/** A code the node reported, narrowed to the spec's set (anything else, or OK, reads as UNKNOWN). */
function knownCode(code: number): Code {
  return code !== Code.OK && codes.has(code) ? (code as Code) : Code.UNKNOWN;
}
