// The HTTP/1.1 link to a compute node (spec section 6): an undici Pool of keep-alive connections per
// node, driven through Pool.dispatch with one small handler object per call (the cheapest undici path:
// no streams, no promises). The deadline and the caller's signal abort the node's request.
import { performance } from 'node:perf_hooks';
import { Client, Pool } from 'undici';
import { Code, GatewayError } from '../errors.js';
import type { NodeFrame } from '../protocol/frames.js';
import { DeadlineTimers } from '../timing/deadline-timers.js';
import { codeForNodeStatus, nodeErrorMessage, parseRetryAfter } from './http-status.js';
import type { NodeCall, NodeCallHandler, NodeFailure, NodeLink } from './node-link.js';
import { defaultNodeFrameLimit, NODE_STREAM_CONTENT_TYPE, NodeStreamDecoder, type NodeStreamSink } from './node-stream.js';

export interface HttpLinkOptions {
  /** Keep-alive connections to the node. */
  readonly connections: number;
  /** Largest reply body (or streamed frame) accepted from the node. */
  readonly maxReplyBytes?: number;
}

const emptyBytes = new Uint8Array(0);
/** Health answers longer than this are not parsed for a function list. */
const HEALTH_BODY_LIMIT = 256 * 1024;
/** Error answers are read only this far: enough for a message. */
const ERROR_BODY_LIMIT = 4096;
/** Call deadlines of every HTTP link, behind one timer (a Timeout per call costs more than the call's own bookkeeping). */
const deadlines = new DeadlineTimers<HttpExchange>(10);

/** An HTTP(S) node. Guarantee: each call gets exactly one onResult or onError. */
export class HttpNodeLink implements NodeLink {
  private readonly pool: Pool;
  private readonly healthClient: Client;
  /** Path prefix of the base URL ("" or "/prefix"). */
  readonly basePath: string;
  readonly maxReplyBytes: number;
  private functions: readonly string[] | undefined;

  constructor(readonly baseUrl: string, options: HttpLinkOptions) {
    const url = new URL(baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    const origin = url.origin;
    this.maxReplyBytes = options.maxReplyBytes ?? defaultNodeFrameLimit;
    // Deadlines are enforced per call, so undici's own header/body timeouts are off.
    this.pool = new Pool(origin, {
      connections: options.connections,
      pipelining: 1,
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      connect: { timeout: 5_000 },
    });
    // Health checks use a connection of their own, so a busy pool does not fail them.
    this.healthClient = new Client(origin, { pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 5_000 } });
  }

  call(call: NodeCall, handler: NodeCallHandler): void {
    const exchange = new HttpExchange(this, call, handler);
    const msLeft = call.deadlineAtMs - Date.now();
    if (call.signal.aborted) return exchange.fail(cancelled(), false, false);
    if (msLeft <= 0) return exchange.fail(deadlineExceeded(), false, false);
    exchange.arm(call.deadlineAtMs);
    const headers = [
      'content-type', call.contentType || 'application/octet-stream',
      'x-relaygate-request-id', call.requestId,
      'x-relaygate-deadline-ms', String(msLeft),
      'x-relaygate-subject', headerSafe(call.subject),
      'x-relaygate-tenant', headerSafe(call.tenant),
    ];
    const metadata = call.metadata;
    for (const key in metadata) headers.push(`x-relaygate-meta-${key}`, headerSafe(metadata[key]!));
    this.pool.dispatch(
      { path: `${this.basePath}/v1/invoke/${encodeURIComponent(call.function)}`, method: 'POST', headers, body: call.payload, blocking: false },
      exchange,
    );
  }

  async checkHealth(timeoutMs: number): Promise<boolean> {
    try {
      const res = await this.healthClient.request({
        path: `${this.basePath}/healthz`,
        method: 'GET',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const ok = res.statusCode === 200 && res.headers['x-relaygate-drain'] !== '1';
      const type = res.headers['content-type'];
      if (ok && typeof type === 'string' && type.startsWith('application/json')) this.learnFunctions(await res.body.text());
      else await res.body.dump();
      return ok;
    } catch {
      return false;
    }
  }

  /** A health answer of the form {"functions": [...]} (the SDK's) tells which functions the node serves. */
  private learnFunctions(body: string): void {
    if (body.length > HEALTH_BODY_LIMIT) return;
    try {
      const { functions } = JSON.parse(body) as { functions?: unknown };
      if (Array.isArray(functions) && functions.every((f) => typeof f === 'string')) this.functions = functions as string[];
    } catch {
      // not the SDK's health body: the node serves whatever it is asked
    }
  }

  advertisedFunctions(): readonly string[] | undefined {
    return this.functions;
  }

  /** Calls waiting for one of the node's connections. */
  pending(): number {
    return this.pool.stats.pending;
  }

  async close(): Promise<void> {
    const closed = new GatewayError(Code.UNAVAILABLE, 'node link closed');
    await Promise.all([this.pool.destroy(closed), this.healthClient.destroy(closed)]);
  }
}

/** Header values must be visible ASCII; anything else travels percent-encoded. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

function cancelled(): GatewayError {
  return new GatewayError(Code.CANCELLED, 'cancelled');
}

function deadlineExceeded(): GatewayError {
  return new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded');
}

/** One call's undici handler (legacy dispatch API: called directly, no adapter in between). */
class HttpExchange implements NodeStreamSink {
  private done = false;
  /** onConnect ran: the request was handed to a socket and may reach the node. */
  private written = false;
  private abortRequest: ((err?: Error) => void) | undefined;
  /** Handle of this call's deadline in `deadlines`; -1 when none is set. */
  private deadlineSlot = -1;
  private listening = false;
  private startedAt = 0;

  private status = 0;
  private contentType = '';
  private nodeId = '';
  private drain = false;
  private retryAfter: string | undefined;
  private stream: NodeStreamDecoder | undefined;
  private chunks: Buffer[] | undefined;
  private first: Buffer | undefined;
  private size = 0;

  constructor(
    private readonly link: HttpNodeLink,
    private readonly call: NodeCall,
    private readonly handler: NodeCallHandler,
  ) {}

  arm(deadlineAtMs: number): void {
    this.deadlineSlot = deadlines.add(this, deadlineAtMs);
    this.call.signal.addEventListener('abort', this);
    this.listening = true;
  }

  /** The deadline passed (called by `deadlines`, at most one tick late). */
  expire(): void {
    this.deadlineSlot = -1;
    this.abortWith(deadlineExceeded());
  }

  /** The caller's signal fired (Cancel, disconnect, drain). */
  handleEvent(): void {
    this.abortWith(cancelled());
  }

  abortWith(err: GatewayError): void {
    if (this.done) return;
    this.fail(err, false, false);
    this.abortRequest?.(err);
  }

  /** Closes this exchange's connection (undici opens another for the next call). */
  private dropConnection(): false {
    this.abortRequest?.(new GatewayError(Code.INTERNAL, 'node reply abandoned'));
    return false;
  }

  // --- undici handler -------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) {
      abort(new GatewayError(Code.CANCELLED, 'call already ended'));
      return;
    }
    this.abortRequest = abort;
    this.written = true;
    this.startedAt = performance.now();
  }

  onHeaders(status: number, rawHeaders: Buffer[], _resume: () => void, _statusText: string): boolean {
    if (this.done) return this.dropConnection();
    if (status < 200) return true; // informational; the final answer follows
    this.status = status;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      switch (name.length) {
        case 12:
          if (name.toString('latin1').toLowerCase() === 'content-type') this.contentType = rawHeaders[i + 1]!.toString('latin1');
          break;
        case 19:
          if (name.toString('latin1').toLowerCase() === 'x-relaygate-node-id') this.nodeId = rawHeaders[i + 1]!.toString('utf8');
          break;
        case 17:
          if (name.toString('latin1').toLowerCase() === 'x-relaygate-drain') this.drain = rawHeaders[i + 1]!.toString('latin1').trim() === '1';
          break;
        case 11:
          if (name.toString('latin1').toLowerCase() === 'retry-after') this.retryAfter = rawHeaders[i + 1]!.toString('latin1');
          break;
      }
    }
    if (status < 300 && this.contentType.startsWith(NODE_STREAM_CONTENT_TYPE)) {
      this.stream = new NodeStreamDecoder(this, this.link.maxReplyBytes);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    // Bytes after the call ended (after a terminal frame, or racing an abort): the connection is
    // in an unknown state, so it is closed rather than handed back to the pool.
    if (this.done) return this.dropConnection();
    if (this.stream) {
      try {
        this.stream.push(chunk);
      } catch (err) {
        this.fail(err as GatewayError, false, false);
        return this.dropConnection();
      }
      return true;
    }
    const limit = this.status < 300 ? this.link.maxReplyBytes : ERROR_BODY_LIMIT;
    if (this.size + chunk.length > limit) {
      if (this.status < 300) {
        this.abortWith(new GatewayError(Code.INTERNAL, `node reply larger than ${limit} bytes`));
        return false;
      }
      return true; // error bodies are only read for their message
    }
    this.size += chunk.length;
    if (this.first === undefined) this.first = chunk;
    else (this.chunks ??= [this.first]).push(chunk);
    return true;
  }

  onComplete(_trailers: unknown): void {
    if (this.done) return;
    if (this.stream) {
      try {
        this.stream.end();
      } catch (err) {
        this.fail(err as GatewayError, false, false);
      }
      return;
    }
    const body = this.chunks ? Buffer.concat(this.chunks, this.size) : (this.first ?? emptyBytes);
    const status = this.status;
    if (status >= 200 && status < 300) {
      this.succeed(body, this.contentType);
      return;
    }
    const code = codeForNodeStatus(status);
    const retryAfterMs = code === Code.RESOURCE_EXHAUSTED || code === Code.UNAVAILABLE ? parseRetryAfter(this.retryAfter, Date.now()) : 0;
    this.fail(new GatewayError(code, nodeErrorMessage(status, body), { retryAfterMs }), false, false);
  }

  onError(err: Error): void {
    if (this.done) return;
    if (err instanceof GatewayError) {
      this.fail(err, false, false);
      return;
    }
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_INVALID_ARG') {
      this.fail(new GatewayError(Code.INVALID_ARGUMENT, 'request cannot be sent to the node', { cause: err }), false, false);
      return;
    }
    if (!this.written) {
      // The request never reached a socket: connection refused, reset or timed out while connecting.
      this.fail(new GatewayError(Code.UNAVAILABLE, 'node unreachable', { cause: err }), true, true);
      return;
    }
    const message = this.status === 0 ? 'connection to the node lost before it answered' : 'connection to the node lost mid-reply';
    this.fail(new GatewayError(Code.UNAVAILABLE, message, { cause: err }), false, true);
  }

  // --- stream sink ----------------------------------------------------------------------------

  progress(fraction: number, payload: Uint8Array): void {
    if (!this.done) this.handler.onProgress(fraction, payload);
  }

  terminal(frame: Exclude<NodeFrame, { progress: unknown }>): void {
    if (this.done) return;
    if ('result' in frame) {
      const r = frame.result;
      this.succeed(r.payload, r.contentType ?? '', r.nodeId, r.durationMs);
    } else {
      const e = frame.error;
      const code = (e.code === Code.OK ? Code.UNKNOWN : e.code) as Code;
      this.fail(new GatewayError(code, e.message || 'node reported an error', { retryAfterMs: e.retryAfterMs ?? 0 }), false, false);
    }
  }

  // --- endings --------------------------------------------------------------------------------

  private settle(): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.deadlineSlot !== -1) deadlines.remove(this, this.deadlineSlot);
    if (this.listening) this.call.signal.removeEventListener('abort', this);
    return true;
  }

  private succeed(payload: Uint8Array, contentType: string, frameNodeId?: string, frameDurationMs?: number): void {
    if (!this.settle()) return;
    const duration = frameDurationMs || Math.round(performance.now() - this.startedAt);
    this.handler.onResult(payload, contentType, this.nodeId || frameNodeId || this.link.baseUrl, duration, this.drain);
  }

  /** Ends the call with `error`; `unsent` and `connectionError` as NodeFailure defines them. */
  fail(error: GatewayError, unsent: boolean, connectionError: boolean): void {
    if (!this.settle()) return;
    const failure: NodeFailure = { error, unsent, connectionError, drain: this.drain };
    this.handler.onError(failure);
  }
}

