// A TypeScript client for relaygate over the `ws` package, in either subprotocol.
// Every request gets exactly one answer: its terminal frame, or a rejection when the connection ends.
// Reconnecting is left to the caller; the close event says whether the gateway invites it.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { Close, Code, GatewayError, codeFromName, type Code as CodeValue } from '../errors.js';
import { subprotocolNames, type Subprotocol } from '../protocol/codec.js';
import type { ClientFrame, InvokeBody } from '../protocol/frames.js';
import {
  decodeReply,
  encodeRequest,
  type Ack,
  type ErrorReply,
  type Event,
  type GoAway,
  type Pong,
  type Progress,
  type Result,
  type ServerMessage,
  type StreamPosition,
  type Welcome,
} from './wire.js';

export type { Subprotocol };

export interface ConnectOptions {
  /** The JWT presented at the upgrade. */
  token: string;
  /** Default 'proto' (binary). */
  subprotocol?: Subprotocol;
  /** Where the credential goes: the Authorization header (default) or the access_token query parameter. */
  credentialIn?: 'header' | 'query';
  /** Trusted CA certificate(s), PEM, for a gateway with a private or self-signed certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** false accepts any certificate (development only). Default true. */
  rejectUnauthorized?: boolean;
  /** Origin header to send (browsers always send one). */
  origin?: string;
  /** Time for the TCP/TLS/WebSocket handshake and the Welcome. Default 10 s. */
  connectTimeoutMs?: number;
  /** Largest server frame accepted. Default 64 MiB. */
  maxPayload?: number;
}

export interface InvokeOptions {
  contentType?: string;
  /** Deadline at the gateway; 0 or unset = the gateway's default. */
  timeoutMs?: number;
  /** Also publish Progress/Result as events on this topic. */
  jobTopic?: string;
  /** Passed to the node as x-relaygate-meta-* headers. */
  metadata?: Record<string, string>;
  onProgress?: (progress: Progress) => void;
  /** Aborting sends a Cancel; the call then ends with RelaygateError CANCELLED. */
  signal?: AbortSignal;
}

export interface SubscribeOptions {
  /** Ask for the events missed since `since` (spec section 3). */
  recover?: boolean;
  /** Default: the position of the last event this client saw on the topic. */
  since?: StreamPosition;
}

/** How a connection ended and what the gateway advises. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** The close code invites a reconnect (1001, 4008, 4010, or an abnormal 1006). */
  reconnect: boolean;
  /** Reconnect only with a fresh credential (4001). */
  needsFreshToken: boolean;
}

/** What the spec says a close code invites (spec section 5). */
export function closeAdvice(code: number): { reconnect: boolean; needsFreshToken: boolean } {
  switch (code) {
    case Close.GOING_AWAY:
    case Close.SLOW_CONSUMER:
    case Close.BUS_GAP:
    case 1006: // no close frame: the network or the process went away
    case 1011:
    case 1012:
    case 1013:
      return { reconnect: true, needsFreshToken: false };
    case Close.TOKEN_EXPIRED:
      return { reconnect: true, needsFreshToken: true };
    default:
      return { reconnect: false, needsFreshToken: false };
  }
}

/** A request that ended with an Error frame, a refused upgrade, or a connection that ended first. */
export class RelaygateError extends GatewayError {
  /** HTTP status of a refused upgrade. */
  readonly httpStatus: number | undefined;
  /** Close code when the connection ended before the answer. */
  readonly closeCode: number | undefined;

  constructor(code: CodeValue, message: string, options: { retryAfterMs?: number; cause?: unknown; httpStatus?: number; closeCode?: number } = {}) {
    super(code, message, options);
    this.name = 'RelaygateError';
    this.httpStatus = options.httpStatus;
    this.closeCode = options.closeCode;
  }
}

export interface RelaygateClientEvents {
  /** The connection ended; pending requests have been rejected. */
  close: [CloseInfo];
  /** The gateway is draining: reconnect (to another instance) within the given time. */
  goAway: [GoAway];
  /** Every event received, after its subscription's callback. */
  event: [Event];
  /** A server frame could not be read; the connection is closed with 1002. */
  protocolError: [Error];
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = WithoutId<Exclude<ClientFrame, { kind: 'none' }>>;

interface Pending {
  /** Counted by the gateway against max_in_flight. */
  readonly counted: boolean;
  resolve(message: ServerMessage): void;
  reject(err: RelaygateError): void;
  onProgress?: ((progress: Progress) => void) | undefined;
}

/** A counted request waiting for a free slot. */
interface Waiting {
  send(): void;
  reject(err: RelaygateError): void;
}

interface RequestOptions {
  onProgress?: ((progress: Progress) => void) | undefined;
  onId?: (id: number) => void;
  signal?: AbortSignal | undefined;
}

// What the gateway counts against max_in_flight; Ping, Cancel and Unsubscribe are answered at once.
const countedKinds: ReadonlySet<ClientFrame['kind']> = new Set(['invoke', 'subscribe', 'publish', 'refresh']);

interface Subscription {
  onEvent: (event: Event) => void;
  position: StreamPosition | undefined;
}

const statusCodes: Record<number, CodeValue> = {
  400: Code.INVALID_ARGUMENT,
  401: Code.UNAUTHENTICATED,
  403: Code.PERMISSION_DENIED,
  404: Code.NOT_FOUND,
  429: Code.RESOURCE_EXHAUSTED,
  503: Code.UNAVAILABLE,
};

function errorFrom(reply: ErrorReply): RelaygateError {
  return new RelaygateError(reply.code as CodeValue, reply.message, { retryAfterMs: reply.retryAfterMs });
}

function toBytes(payload: Uint8Array | string | undefined): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  return typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
}

/** Reads a refused upgrade's JSON error body (bounded) into a RelaygateError. */
async function upgradeRefusal(res: IncomingMessage): Promise<RelaygateError> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 16_384) break;
      chunks.push(chunk);
    }
  } catch {
    // The body is a courtesy; the status says enough.
  }
  const status = res.statusCode ?? 0;
  let code = statusCodes[status] ?? Code.UNKNOWN;
  let message = `upgrade refused with HTTP ${status}`;
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string') code = codeFromName(body.code) ?? code;
    if (typeof body.message === 'string' && body.message.length > 0) message = `${message}: ${body.message}`;
  } catch {
    // Not JSON: keep the status.
  }
  const retryAfter = Number(res.headers['retry-after']);
  return new RelaygateError(code, message, { httpStatus: status, ...(retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}) });
}

/** One connection to a gateway. Create with RelaygateClient.connect. */
export class RelaygateClient extends EventEmitter<RelaygateClientEvents> {
  /** The gateway's Welcome: session id, limits, credential expiry. */
  readonly welcome: Welcome;
  readonly subprotocol: Subprotocol;

  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private readonly subscriptions = new Map<string, Subscription>();
  private nextId = 1;
  private closed: CloseInfo | undefined;
  private readonly closedPromise: Promise<CloseInfo>;

  private constructor(private readonly ws: WebSocket, subprotocol: Subprotocol, welcome: Welcome) {
    super();
    this.subprotocol = subprotocol;
    this.welcome = welcome;
    this.maxInFlight = welcome.maxInFlight > 0 ? welcome.maxInFlight : Number.POSITIVE_INFINITY;
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve(this.onClose(code, reason.toString('utf8'))));
    });
    ws.on('error', () => {
      // 'close' follows every error; the close handler answers what is pending.
    });
  }

  /**
   * Opens a connection and waits for the Welcome. Rejects with RelaygateError: the upgrade's
   * HTTP status and code when refused (401 UNAUTHENTICATED, 403, 400, 503), UNAVAILABLE when the
   * gateway cannot be reached, DEADLINE_EXCEEDED after connectTimeoutMs.
   */
  static connect(url: string, options: ConnectOptions): Promise<RelaygateClient> {
    const subprotocol = options.subprotocol ?? 'proto';
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const headers: Record<string, string> = {};
    let target = url;
    if ((options.credentialIn ?? 'header') === 'header') headers.authorization = `Bearer ${options.token}`;
    else target += `${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(options.token)}`;
    if (options.origin !== undefined) headers.origin = options.origin;

    // Error texts from below may quote the URL; with the credential in the query that would leak it.
    const redact = (text: string): string => text.replaceAll(encodeURIComponent(options.token), '…').replaceAll(options.token, '…');

    return new Promise((resolve, reject) => {
      let settled = false;
      let ws: WebSocket;
      const fail = (err: RelaygateError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.terminate();
        reject(err);
      };
      try {
        ws = new WebSocket(target, subprotocolNames[subprotocol], {
          headers,
          perMessageDeflate: false,
          handshakeTimeout: timeoutMs,
          maxPayload: options.maxPayload ?? 64 * 1024 * 1024,
          ...(options.ca !== undefined ? { ca: options.ca } : {}),
          ...(options.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.rejectUnauthorized } : {}),
        });
      } catch (err) {
        reject(new RelaygateError(Code.INVALID_ARGUMENT, `bad gateway URL: ${redact((err as Error).message)}`));
        return;
      }
      const timer = setTimeout(() => fail(new RelaygateError(Code.DEADLINE_EXCEEDED, `no Welcome within ${timeoutMs} ms`)), timeoutMs);
      ws.on('unexpected-response', (_req, res) => {
        upgradeRefusal(res).then(fail, () => fail(new RelaygateError(Code.UNKNOWN, `upgrade refused with HTTP ${res.statusCode}`)));
      });
      ws.on('error', (err) => fail(new RelaygateError(Code.UNAVAILABLE, `cannot connect to ${url}: ${redact(err.message)}`, { cause: err })));
      ws.on('close', (code, reason) => fail(new RelaygateError(Code.UNAVAILABLE, `closed before the Welcome (${code}${reason.length ? ` ${reason.toString('utf8')}` : ''})`, { closeCode: code })));
      ws.once('message', (data, isBinary) => {
        if (settled) return;
        let first: ServerMessage;
        try {
          first = decodeReply(subprotocol, isBinary ? new Uint8Array(data as Buffer) : (data as Buffer).toString('utf8'));
        } catch (err) {
          fail(new RelaygateError(Code.INTERNAL, `unreadable first frame: ${(err as Error).message}`, { cause: err }));
          return;
        }
        if (first.kind !== 'welcome') {
          fail(new RelaygateError(Code.INTERNAL, `the first frame was ${first.kind}, not Welcome`));
          return;
        }
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners();
        resolve(new RelaygateClient(ws, subprotocol, first.welcome));
      });
    });
  }

  /** True until the connection closes. */
  get isOpen(): boolean {
    return this.closed === undefined;
  }

  /** Bytes queued in the socket but not yet sent. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Resolves when the connection has closed, with how and why. */
  get closedInfo(): Promise<CloseInfo> {
    return this.closedPromise;
  }

  /**
   * Invokes `fn`; resolves with the Result, rejects with the Error frame (or the closed connection).
   * Beyond the Welcome's max_in_flight, the Invoke waits in the client for a free slot.
   */
  invoke(fn: string, payload?: Uint8Array | string, options: InvokeOptions = {}): Promise<Result> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new RelaygateError(Code.CANCELLED, 'cancelled before it was sent'));
    const invoke: InvokeBody = {
      function: fn,
      payload: toBytes(payload),
      contentType: options.contentType ?? '',
      timeoutMs: options.timeoutMs ?? 0,
      jobTopic: options.jobTopic ?? '',
      metadata: options.metadata ?? {},
    };
    let id = 0;
    const onAbort = (): void => {
      if (this.pending.has(id)) this.request({ kind: 'cancel', targetId: id }).catch(() => undefined);
    };
    const answer = this.request({ kind: 'invoke', invoke }, { onProgress: options.onProgress, onId: (assigned) => { id = assigned; }, signal });
    signal?.addEventListener('abort', onAbort, { once: true });
    return answer.then(
      (m) => {
        signal?.removeEventListener('abort', onAbort);
        if (m.kind !== 'result') throw new RelaygateError(Code.INTERNAL, `invoke answered with ${m.kind}`);
        return m.result;
      },
      (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        throw err;
      },
    );
  }

  /**
   * Subscribes to `topic`; `onEvent` gets each event (replayed ones first, with recover).
   * Resolves with the Ack; rejects (and forgets the callback) on an Error.
   */
  async subscribe(topic: string, onEvent: (event: Event) => void, options: SubscribeOptions = {}): Promise<Ack> {
    const previous = this.subscriptions.get(topic);
    const subscription: Subscription = { onEvent, position: options.since ?? previous?.position };
    // Registered before sending: with recover, replayed events arrive before the Ack.
    this.subscriptions.set(topic, subscription);
    try {
      const m = await this.request({ kind: 'subscribe', topic, recover: options.recover ?? false, since: options.recover ? subscription.position : undefined });
      const ack = this.expectAck(m);
      if (ack.position && !subscription.position) subscription.position = ack.position;
      return ack;
    } catch (err) {
      if (this.subscriptions.get(topic) === subscription) {
        if (previous) this.subscriptions.set(topic, previous);
        else this.subscriptions.delete(topic);
      }
      throw err;
    }
  }

  /** Ends a subscription; its callback gets nothing more. */
  async unsubscribe(topic: string): Promise<Ack> {
    this.subscriptions.delete(topic);
    return this.expectAck(await this.request({ kind: 'unsubscribe', topic }));
  }

  /** The position of the last event seen on `topic` (for a later subscribe with recover). */
  positionOf(topic: string): StreamPosition | undefined {
    return this.subscriptions.get(topic)?.position;
  }

  /** Publishes one event; resolves with the Ack once the bus accepted it. */
  async publish(topic: string, payload?: Uint8Array | string, contentType = ''): Promise<Ack> {
    return this.expectAck(await this.request({ kind: 'publish', topic, payload: toBytes(payload), contentType }));
  }

  /** Round trip to the gateway. */
  async ping(): Promise<Pong> {
    const m = await this.request({ kind: 'ping', clientTimeMs: Date.now() });
    if (m.kind !== 'pong') throw new RelaygateError(Code.INTERNAL, `ping answered with ${m.kind}`);
    return m.pong;
  }

  /** Presents a new token for the same subject; resolves once the gateway accepted it. */
  async refresh(token: string): Promise<Ack> {
    return this.expectAck(await this.request({ kind: 'refresh', token }));
  }

  /** Closes the connection (1000) and resolves once it is closed. Pending requests are rejected. */
  close(code: number = Close.NORMAL, reason = ''): Promise<CloseInfo> {
    if (this.closed) return this.closedPromise;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    // A gateway that never answers the close handshake must not hold us.
    const force = setTimeout(() => this.ws.terminate(), 5_000);
    force.unref();
    return this.closedPromise.finally(() => clearTimeout(force));
  }

  private expectAck(m: ServerMessage): Ack {
    if (m.kind !== 'ack') throw new RelaygateError(Code.INTERNAL, `expected Ack, got ${m.kind}`);
    return m.ack;
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  /**
   * Sends one request and resolves with its terminal frame (Result, Ack or Pong); Error rejects.
   * Requests the gateway counts against max_in_flight wait here, in order, for a free slot; an
   * abort of `signal` while waiting drops the request unsent.
   */
  private request(body: RequestBody, options: RequestOptions = {}): Promise<ServerMessage> {
    if (this.closed) {
      return Promise.reject(new RelaygateError(Code.UNAVAILABLE, `connection closed (${this.closed.code})`, { closeCode: this.closed.code }));
    }
    return new Promise<ServerMessage>((resolve, reject) => {
      const counted = countedKinds.has(body.kind);
      const send = (): void => {
        const id = this.allocateId();
        options.onId?.(id);
        if (counted) this.inFlight++;
        this.pending.set(id, { counted, resolve, reject, onProgress: options.onProgress });
        this.ws.send(encodeRequest(this.subprotocol, { id, ...body } as ClientFrame), (err) => {
          if (err) this.settle(id)?.reject(new RelaygateError(Code.UNAVAILABLE, `send failed: ${err.message}`, { cause: err }));
        });
      };
      if (!counted || (this.inFlight < this.maxInFlight && this.waiting.length === 0)) {
        send();
        return;
      }
      const waiting: Waiting = { send, reject };
      this.waiting.push(waiting);
      options.signal?.addEventListener('abort', () => {
        const at = this.waiting.indexOf(waiting);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        reject(new RelaygateError(Code.CANCELLED, 'cancelled before it was sent'));
      }, { once: true });
    });
  }

  /** Forgets a pending request, frees its slot and sends what waited for one. */
  private settle(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    if (pending.counted) {
      this.inFlight--;
      while (this.inFlight < this.maxInFlight && this.waiting.length > 0) this.waiting.shift()!.send();
    }
    return pending;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    let m: ServerMessage;
    try {
      m = decodeReply(this.subprotocol, isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString('utf8'));
    } catch (err) {
      this.emit('protocolError', err as Error);
      this.close(1002, 'unreadable frame').catch(() => undefined);
      return;
    }
    if (m.id === 0) {
      if (m.kind === 'event') {
        const subscription = this.subscriptions.get(m.event.topic);
        if (subscription) {
          if (m.event.position) subscription.position = m.event.position;
          subscription.onEvent(m.event);
        }
        this.emit('event', m.event);
      } else if (m.kind === 'goAway') {
        this.emit('goAway', m.goAway);
      }
      return;
    }
    const pending = this.pending.get(m.id);
    if (!pending) return;
    switch (m.kind) {
      case 'progress':
        pending.onProgress?.(m.progress);
        return;
      case 'error':
        this.settle(m.id);
        pending.reject(errorFrom(m.error));
        return;
      case 'event':
        // Events are unsolicited (id 0); one carrying a request id is not an answer.
        return;
      default:
        this.settle(m.id);
        pending.resolve(m);
    }
  }

  private onClose(code: number, reason: string): CloseInfo {
    const info: CloseInfo = { code, reason, ...closeAdvice(code) };
    this.closed = info;
    const failure = (): RelaygateError =>
      new RelaygateError(Code.UNAVAILABLE, `connection closed (${code}${reason ? ` ${reason}` : ''}) before the answer`, { closeCode: code });
    const pending = [...this.pending.values(), ...this.waiting];
    this.pending.clear();
    this.waiting.length = 0;
    this.inFlight = 0;
    this.subscriptions.clear();
    for (const p of pending) p.reject(failure());
    this.emit('close', info);
    return info;
  }
}
