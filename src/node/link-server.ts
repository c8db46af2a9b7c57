// The node side of the binary node link (relaygate+tcp:// / relaygate+tls://): accepts gateway
// connections, runs each request through the node's function table, streams progress and one
// terminal frame back, aborts on cancel, deadline or connection loss, and announces drain.
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { Code, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { LinkWire } from '../nodes/binary-link-wire.js';
import { linkProtocolVersion, type LinkMessage, type LinkRequestBody } from '../protocol/link-codec.js';
import { defaultLinkMaxFrameBytes } from '../protocol/link-framing.js';

/** One invocation as a node function sees it, whichever link carried it. */
export interface LinkInvocation {
  readonly requestId: string;
  readonly function: string;
  readonly payload: Uint8Array;
  readonly contentType: string;
  /** Absolute deadline, epoch ms. */
  readonly deadlineAtMs: number;
  readonly subject: string;
  readonly tenant: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Aborted on cancel, deadline or link loss. */
  readonly signal: AbortSignal;
  /** Streams a progress update to the caller (0..1). */
  progress(fraction: number, payload?: Uint8Array): void;
}

/** What a function answers with. */
export interface LinkReply {
  readonly payload: Uint8Array;
  readonly contentType: string;
}

/** Runs one invocation through the node's function table; rejects with GatewayError for a coded failure (NOT_FOUND for an unknown function). */
export type LinkRunner = (invocation: LinkInvocation) => Promise<LinkReply>;

export interface LinkServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly nodeId: string;
  readonly weight: number;
  /** Names announced in the hello (the registry's function list). */
  readonly functions: readonly string[];
  readonly run: LinkRunner;
  /** Requests accepted in flight per connection (announced; more get RESOURCE_EXHAUSTED). */
  readonly maxInFlight?: number;
  readonly maxFrameBytes?: number;
  /** PEM material: serve relaygate+tls:// instead of plain TCP. */
  readonly tls?: TlsOptions;
  readonly log: Logger;
}

interface Running {
  readonly controller: AbortController;
  readonly startedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Set once the terminal frame is queued (or the request was cancelled). */
  done: boolean;
}

interface Connection {
  readonly wire: LinkWire;
  readonly running: Map<number, Running>;
  helloSeen: boolean;
}

/** A listening link server; `drain` tells every gateway to stop sending work while in-flight requests finish. */
export class LinkServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly maxInFlight: number;
  private readonly maxFrameBytes: number;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  private constructor(private readonly opts: LinkServerOptions) {
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxFrameBytes = opts.maxFrameBytes ?? defaultLinkMaxFrameBytes;
    const onSocket = (socket: Socket): void => this.accept(socket);
    this.server = opts.tls ? createTlsServer(opts.tls, onSocket) : createTcpServer(onSocket);
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(opts: LinkServerOptions): Promise<LinkServer> {
    const s = new LinkServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(opts.port, opts.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  /** The bound port. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Requests running across all connections. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.connections) n += c.running.size;
    return n;
  }

  /** Announces drain on every connection (and in the hello of new ones); requests already sent are still served. */
  drain(reason = 'node draining'): void {
    if (this.draining) return;
    this.draining = true;
    for (const c of this.connections) c.wire.send({ id: 0, drain: { reason } });
  }

  /** Resolves when no request is running. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops accepting connections and closes the open ones; running requests are aborted. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.wire.end();
    // Give the peers a moment to read what was queued, then cut whatever is left.
    const cut = setTimeout(() => { for (const c of this.connections) c.wire.destroy(); }, 1000);
    await closed;
    clearTimeout(cut);
  }

  private accept(socket: Socket): void {
    const conn: Connection = {
      running: new Map(),
      helloSeen: false,
      wire: new LinkWire(socket, {
        maxFrameBytes: this.maxFrameBytes,
        pauseReadsWhileBlocked: true,
        onMessage: (m) => this.onMessage(conn, m),
        onClose: (err) => this.onClose(conn, err),
      }),
    };
    this.connections.add(conn);
    conn.wire.send({
      id: 0,
      hello: {
        version: linkProtocolVersion,
        nodeId: this.opts.nodeId,
        functions: [...this.opts.functions],
        weight: this.opts.weight,
        maxInFlight: this.maxInFlight,
        maxFrameBytes: this.maxFrameBytes,
        draining: this.draining,
      },
    });
  }

  private onMessage(conn: Connection, m: LinkMessage): void {
    if ('hello' in m) {
      if (m.hello.version < 1) return this.violation(conn, `unsupported link version ${m.hello.version}`);
      conn.helloSeen = true;
      return;
    }
    if (!conn.helloSeen) return this.violation(conn, 'first frame was not a hello');
    if ('request' in m) return this.start(conn, m.id, m.request);
    if ('cancel' in m) return this.cancel(conn, m.id);
    if ('ping' in m) return conn.wire.send({ id: 0, pong: { nonce: m.ping.nonce } });
    if ('pong' in m) return;
    this.violation(conn, 'unexpected frame from gateway');
  }

  private violation(conn: Connection, problem: string): void {
    this.opts.log.warn({ problem }, 'node link protocol violation; closing the connection');
    conn.wire.destroy(new Error(problem));
  }

  private start(conn: Connection, id: number, req: LinkRequestBody): void {
    if (id === 0 || conn.running.has(id)) return this.violation(conn, `request id ${id} is zero or already in flight`);
    if (conn.running.size >= this.maxInFlight) {
      conn.wire.send({ id, error: { code: Code.RESOURCE_EXHAUSTED, message: 'node link in-flight limit reached', retryAfterMs: 100 } });
      return;
    }
    const controller = new AbortController();
    const running: Running = { controller, startedAt: Date.now(), timer: undefined, done: false };
    conn.running.set(id, running);
    const deadlineAtMs = running.startedAt + req.deadlineMs;
    if (req.deadlineMs > 0) {
      running.timer = setTimeout(() => {
        controller.abort(new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded at the node'));
        this.finish(conn, id, running, { id, error: { code: Code.DEADLINE_EXCEEDED, message: 'deadline exceeded at the node' } });
      }, req.deadlineMs);
    }
    const invocation: LinkInvocation = {
      requestId: req.requestId,
      function: req.function,
      payload: req.payload,
      contentType: req.contentType,
      deadlineAtMs: req.deadlineMs > 0 ? deadlineAtMs : Number.MAX_SAFE_INTEGER,
      subject: req.subject,
      tenant: req.tenant,
      metadata: req.metadata,
      signal: controller.signal,
      progress: (fraction, payload) => {
        if (!running.done) conn.wire.send({ id, progress: { fraction, payload: payload ?? Buffer.alloc(0) } });
      },
    };
    let pending: Promise<LinkReply>;
    try {
      pending = this.opts.run(invocation);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (reply) => this.finish(conn, id, running, {
        id,
        result: { payload: reply.payload, contentType: reply.contentType, nodeId: this.opts.nodeId, durationMs: Date.now() - running.startedAt },
      }),
      (err: unknown) => this.finish(conn, id, running, { id, error: this.errorBody(err, req.function) }),
    );
  }

  private errorBody(err: unknown, fn: string): { code: number; message: string; retryAfterMs: number } {
    if (err instanceof GatewayError) return { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs };
    this.opts.log.error({ err, function: fn }, 'function failed');
    return { code: Code.INTERNAL, message: 'internal error', retryAfterMs: 0 };
  }

  private cancel(conn: Connection, id: number): void {
    const running = conn.running.get(id);
    if (!running) return;
    running.controller.abort(new GatewayError(Code.CANCELLED, 'cancelled by the gateway'));
    this.finish(conn, id, running, { id, error: { code: Code.CANCELLED, message: 'cancelled' } });
  }

  private finish(conn: Connection, id: number, running: Running, terminal: LinkMessage): void {
    if (running.done) return;
    running.done = true;
    if (running.timer) clearTimeout(running.timer);
    conn.running.delete(id);
    conn.wire.send(terminal);
    this.maybeIdle();
  }

  private onClose(conn: Connection, err: Error | undefined): void {
    this.connections.delete(conn);
    for (const [, running] of conn.running) {
      running.done = true;
      if (running.timer) clearTimeout(running.timer);
      running.controller.abort(new GatewayError(Code.UNAVAILABLE, 'node link closed', { cause: err }));
    }
    conn.running.clear();
    this.maybeIdle();
  }

  private maybeIdle(): void {
    if (this.idleWaiters.length === 0 || this.inFlight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

