// The node side of the binary node link (relaygate+tcp:// / relaygate+tls://): accepts gateway
// connections, runs each request through the node's function table, streams progress and one
// terminal frame back, aborts on cancel, deadline or connection loss, and announces drain.
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { Code, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { LinkWire } from '../nodes/binary-link-wire.js';
import { linkFrameSizeBound, linkProtocolVersion, type LinkMessage, type LinkRequestBody } from '../protocol/link-codec.js';
import { defaultLinkMaxFrameBytes } from '../protocol/link-framing.js';
import { NodeCall, type FunctionHost } from './function-host.js';
import type { RelaygateNode } from './sdk.js';

export interface LinkServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The node's id, read at each hello (it may be settled after the HTTP server listens). */
  nodeId(): string;
  /** Balancing weight announced in the hello. */
  readonly weight?: number;
  /** Requests accepted in flight per connection (announced; more get RESOURCE_EXHAUSTED). */
  readonly maxInFlight?: number;
  readonly maxFrameBytes?: number;
  /** PEM material: serve relaygate+tls:// instead of plain TCP. */
  readonly tls?: TlsOptions;
  readonly log?: Logger;
}

interface Running {
  readonly call: NodeCall;
  readonly startedAt: number;
  /** Set once the terminal frame is queued. */
  done: boolean;
}

interface Connection {
  readonly wire: LinkWire;
  readonly running: Map<number, Running>;
  helloSeen: boolean;
  /** Largest frame the gateway accepts (its hello). */
  peerMaxFrameBytes: number;
  /** The gateway echoed our drain: it sends no new request on this connection after the echo. */
  drainAcked: boolean;
}

/**
 * A listening link server running calls through `host`, the same function table the node's HTTP
 * server serves. When the host starts draining, every gateway is told at once; requests already
 * sent are still served.
 */
export class LinkServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly maxInFlight: number;
  private readonly maxFrameBytes: number;
  private draining = false;
  private goneWaiters: (() => void)[] = [];

  private constructor(private readonly functions: FunctionHost, private readonly opts: LinkServerOptions) {
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.maxFrameBytes = opts.maxFrameBytes ?? defaultLinkMaxFrameBytes;
    const onSocket = (socket: Socket): void => this.accept(socket);
    this.server = opts.tls ? createTlsServer(opts.tls, onSocket) : createTcpServer(onSocket);
    if (functions.draining) this.drain();
    functions.onDrain(() => this.drain());
  }

  /** Starts listening for gateways; resolves once the port is bound. */
  static async listen(functions: FunctionHost, opts: LinkServerOptions): Promise<LinkServer> {
    const s = new LinkServer(functions, opts);
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

  /** Announces drain on every connection (and in the hello of new ones). */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const c of this.connections) c.wire.send({ id: 0, drain: { reason: 'node draining' } });
  }

  /**
   * Stops accepting connections and closes the open ones. While draining, first waits (up to
   * `graceMs`) until every gateway has echoed the drain and its requests are answered, so no
   * request sent before a gateway saw the drain is lost; then running requests are aborted.
   */
  async close(graceMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.draining && this.connections.size > 0) await this.connectionsGone(graceMs);
    for (const c of this.connections) c.wire.end();
    // Give the peers a moment to read what was queued, then cut whatever is left.
    const cut = setTimeout(() => { for (const c of this.connections) c.wire.destroy(); }, 1000);
    await closed;
    clearTimeout(cut);
  }

  private connectionsGone(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.goneWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends a drained connection once the gateway has echoed the drain and nothing runs on it. */
  private endIfDrained(conn: Connection): void {
    if (this.draining && conn.drainAcked && conn.running.size === 0) conn.wire.end();
  }

  private accept(socket: Socket): void {
    const conn: Connection = {
      running: new Map(),
      helloSeen: false,
      peerMaxFrameBytes: defaultLinkMaxFrameBytes,
      drainAcked: false,
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
        nodeId: this.opts.nodeId(),
        functions: this.functions.functions,
        weight: this.opts.weight ?? 1,
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
      conn.peerMaxFrameBytes = m.hello.maxFrameBytes || defaultLinkMaxFrameBytes;
      return;
    }
    if (!conn.helloSeen) return this.violation(conn, 'first frame was not a hello');
    if ('request' in m) return this.start(conn, m.id, m.request);
    if ('cancel' in m) return this.cancel(conn, m.id);
    if ('ping' in m) return conn.wire.send({ id: 0, pong: { nonce: m.ping.nonce } });
    if ('pong' in m) return;
    if ('drain' in m) {
      conn.drainAcked = true;
      return this.endIfDrained(conn);
    }
    this.violation(conn, 'unexpected frame from gateway');
  }

  private violation(conn: Connection, problem: string): void {
    this.opts.log?.warn({ problem }, 'node link protocol violation; closing the connection');
    conn.wire.destroy(new Error(problem));
  }

  private start(conn: Connection, id: number, req: LinkRequestBody): void {
    if (id === 0 || conn.running.has(id)) return this.violation(conn, `request id ${id} is zero or already in flight`);
    if (conn.running.size >= this.maxInFlight) {
      conn.wire.send({ id, error: { code: Code.RESOURCE_EXHAUSTED, message: 'node link in-flight limit reached', retryAfterMs: 100 } });
      return;
    }
    const startedAt = Date.now();
    const call = new NodeCall(
      {
        function: req.function,
        requestId: req.requestId,
        payload: req.payload,
        contentType: req.contentType,
        metadata: req.metadata,
        subject: req.subject,
        tenant: req.tenant,
        deadline: req.deadlineMs > 0 ? startedAt + req.deadlineMs : Number.POSITIVE_INFINITY,
      },
      (fraction, payload) => {
        if (running.done) return;
        const progress: LinkMessage = { id, progress: { fraction, payload } };
        if (linkFrameSizeBound(progress) <= conn.peerMaxFrameBytes) conn.wire.send(progress);
        else this.opts.log?.warn({ requestId: req.requestId, bytes: payload.length }, 'progress payload larger than the gateway accepts; dropped');
      },
    );
    const running: Running = { call, startedAt, done: false };
    conn.running.set(id, running);
    this.functions.run(call).then(
      (reply) => this.finish(conn, id, running, {
        id,
        result: { payload: reply.payload, contentType: reply.contentType, nodeId: this.opts.nodeId(), durationMs: Date.now() - startedAt },
      }),
      (err: unknown) => {
        const e = toGatewayError(err);
        this.finish(conn, id, running, { id, error: { code: e.code, message: e.message, retryAfterMs: e.retryAfterMs } });
      },
    );
  }

  private cancel(conn: Connection, id: number): void {
    const running = conn.running.get(id);
    if (!running) return;
    running.call.abort(new GatewayError(Code.CANCELLED, 'cancelled by the gateway'));
    this.finish(conn, id, running, { id, error: { code: Code.CANCELLED, message: 'cancelled' } });
  }

  private finish(conn: Connection, id: number, running: Running, terminal: LinkMessage): void {
    if (running.done) return;
    running.done = true;
    conn.running.delete(id);
    if (linkFrameSizeBound(terminal) > conn.peerMaxFrameBytes) {
      // Sent, the frame would make the gateway close a connection other calls share.
      terminal = { id, error: { code: Code.INTERNAL, message: `node reply larger than the gateway accepts (${conn.peerMaxFrameBytes} bytes per frame)` } };
    }
    conn.wire.send(terminal);
    if (conn.drainAcked) this.endIfDrained(conn);
  }

  private onClose(conn: Connection, err: Error | undefined): void {
    this.connections.delete(conn);
    if (this.connections.size === 0) for (const wake of this.goneWaiters.splice(0)) wake();
    for (const [, running] of conn.running) {
      running.done = true;
      running.call.abort(new GatewayError(Code.UNAVAILABLE, 'node link closed', { cause: err }));
    }
    conn.running.clear();
  }
}

export interface NodeLinkListenOptions {
  /** Default 0: a free port. */
  readonly port?: number;
  /** Default 0.0.0.0. */
  readonly host?: string;
  readonly weight?: number;
  readonly maxInFlight?: number;
  /** Serve relaygate+tls:// with this certificate. */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string; readonly passphrase?: string };
  readonly log?: Logger;
}

/**
 * Serves `node`'s functions over the binary link beside its HTTP server; the link drains and
 * closes with the node. Resolves with the bound port and the URL gateways use
 * (relaygate+tcp:// or relaygate+tls://).
 */
export async function listenNodeLink(node: RelaygateNode, options: NodeLinkListenOptions = {}): Promise<{ server: LinkServer; port: number; url: string }> {
  const bound = options.host ?? '0.0.0.0';
  const server = await LinkServer.listen(node.host, {
    host: bound,
    port: options.port ?? 0,
    nodeId: () => node.id,
    ...(options.weight !== undefined ? { weight: options.weight } : {}),
    ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  node.onClose(() => server.close());
  const advertised = bound === '0.0.0.0' || bound === '::' ? hostname() : bound;
  const url = `relaygate+${options.tls ? 'tls' : 'tcp'}://${advertised.includes(':') ? `[${advertised}]` : advertised}:${server.port}`;
  return { server, port: server.port, url };
}
