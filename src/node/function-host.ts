// The transport-independent core of a compute node: the function table, the per-call request object
// handed to user functions, the concurrency limit and drain. The HTTP server (and any other
// transport) adapts its wire to `FunctionHost.run`, so every transport serves the same functions.
import { Code, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';

/** The fields of one call, as a transport reads them off its wire. */
export interface CallInit {
  readonly function: string;
  /** The gateway's id of this call (x-relaygate-request-id). */
  readonly requestId: string;
  readonly payload: Uint8Array;
  readonly contentType: string;
  /** Invoke.metadata, as the client sent it. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The caller's token subject and tenant. */
  readonly subject: string;
  readonly tenant: string;
  /** Absolute deadline, epoch ms. */
  readonly deadline: number;
}

/** What a function receives. `signal` aborts when the caller cancels, disconnects or the deadline passes. */
export interface NodeRequest extends CallInit {
  readonly signal: AbortSignal;
  /** Reports progress (0..1) with an optional payload; the caller receives it as a Progress frame. */
  progress(fraction: number, payload?: Uint8Array | string): void;
  /** The payload as UTF-8 text. */
  text(): string;
  /** The payload parsed as JSON; throws INVALID_ARGUMENT when it is not JSON. */
  json<T = unknown>(): T;
}

/** A reply with an explicit content type. */
export class NodeReply {
  constructor(readonly payload: Uint8Array, readonly contentType: string) {}
}

/**
 * What a function may return: bytes (application/octet-stream), a string (text/plain), a NodeReply,
 * or any other value, sent as JSON.
 */
export type NodeResult = Uint8Array | string | NodeReply | unknown;

/** A function a node serves. */
export type NodeFunction = (req: NodeRequest) => NodeResult | Promise<NodeResult>;

/** A reply of `payload` with `contentType`. */
export function reply(payload: Uint8Array | string, contentType: string): NodeReply {
  return new NodeReply(typeof payload === 'string' ? Buffer.from(payload) : payload, contentType);
}

/** A JSON reply. */
export function json(value: unknown): NodeReply {
  return new NodeReply(Buffer.from(JSON.stringify(value)), 'application/json');
}

/** Function names the gateway can route (spec section 4). */
const functionNamePattern = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * One running call. The transport calls `abort` when its caller goes away; the AbortController
 * (and deadline timer) are only made if the function looks at `signal`.
 */
// The call's fields (CallInit) are merged into the class's type and copied in by the constructor.
export interface NodeCall extends CallInit {}
export class NodeCall implements NodeRequest {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abortReason: GatewayError | undefined;
  private ended = false;

  constructor(init: CallInit, private readonly onProgress: (fraction: number, payload: Uint8Array) => void) {
    Object.assign(this, init);
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason) this.controller.abort(this.abortReason);
      else {
        const left = this.deadline - Date.now();
        if (left <= 0) this.abort(new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded'));
        else if (Number.isFinite(left)) {
          this.timer = setTimeout(() => this.abort(new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded')), left);
          this.timer.unref();
        }
      }
    }
    return this.controller.signal;
  }

  /** Why the call was aborted, once it was. */
  get aborted(): GatewayError | undefined {
    return this.abortReason;
  }

  /** The caller went away (cancel, disconnect, deadline): aborts `signal`. */
  abort(reason: GatewayError): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
    this.dispose();
  }

  /** Clears the deadline timer; the call is over (later progress is ignored). */
  dispose(): void {
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  progress(fraction: number, payload?: Uint8Array | string): void {
    if (this.abortReason || this.ended) return;
    const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
    this.onProgress(f, payload === undefined ? new Uint8Array(0) : typeof payload === 'string' ? Buffer.from(payload) : payload);
  }

  text(): string {
    return Buffer.from(this.payload.buffer, this.payload.byteOffset, this.payload.byteLength).toString('utf8');
  }

  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch {
      throw new GatewayError(Code.INVALID_ARGUMENT, 'payload is not JSON');
    }
  }
}

export interface FunctionHostOptions {
  /** Calls run at once; beyond it calls are refused with RESOURCE_EXHAUSTED (HTTP 429). */
  readonly maxConcurrency?: number;
  readonly log?: Logger;
}

/** Runs functions by name. Guarantee: `run` settles exactly once per call, with a reply or a GatewayError. */
export class FunctionHost {
  private readonly table: Map<string, NodeFunction>;
  private running = 0;
  private drainingFlag = false;
  private readonly drainListeners: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly maxConcurrency: number;

  constructor(functions: Readonly<Record<string, NodeFunction>>, private readonly options: FunctionHostOptions = {}) {
    this.table = new Map();
    for (const [name, fn] of Object.entries(functions)) {
      if (!functionNamePattern.test(name)) throw new Error(`function name ${JSON.stringify(name)} is not 1-128 characters of [A-Za-z0-9._-]`);
      if (typeof fn !== 'function') throw new Error(`function ${name} is not a function`);
      this.table.set(name, fn);
    }
    this.maxConcurrency = options.maxConcurrency ?? 1024;
  }

  /** The functions served. */
  get functions(): string[] {
    return [...this.table.keys()];
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.running;
  }

  /** True once draining started: every reply says so, and health checks fail. */
  get draining(): boolean {
    return this.drainingFlag;
  }

  startDraining(): void {
    if (this.drainingFlag) return;
    this.drainingFlag = true;
    for (const fn of this.drainListeners) fn();
  }

  /** Calls `fn` when draining starts, so a transport that pushes notices (the binary link) can announce it. */
  onDrain(fn: () => void): void {
    this.drainListeners.push(fn);
  }

  /** Resolves when no call is running. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Runs `call`; rejects with a GatewayError (NOT_FOUND, RESOURCE_EXHAUSTED, the function's own, or INTERNAL). */
  async run(call: NodeCall): Promise<NodeReply> {
    const fn = this.table.get(call.function);
    if (!fn) throw new GatewayError(Code.NOT_FOUND, `no function "${call.function}" on this node`);
    if (this.running >= this.maxConcurrency) {
      throw new GatewayError(Code.RESOURCE_EXHAUSTED, 'node at its concurrency limit', { retryAfterMs: 100 });
    }
    this.running++;
    try {
      return normalize(await fn(call));
    } catch (err) {
      const reason = call.aborted;
      if (reason) {
        this.options.log?.info({ fn: call.function, requestId: call.requestId, reason: reason.message }, 'invocation aborted');
        throw reason;
      }
      const failure = toGatewayError(err);
      if (failure.code === Code.INTERNAL && !(err instanceof GatewayError)) {
        this.options.log?.error({ fn: call.function, requestId: call.requestId, err }, 'function threw');
      }
      throw failure;
    } finally {
      call.dispose();
      this.running--;
      if (this.running === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}

function normalize(value: NodeResult): NodeReply {
  if (value instanceof NodeReply) return value;
  if (value instanceof Uint8Array) return new NodeReply(value, 'application/octet-stream');
  if (typeof value === 'string') return new NodeReply(Buffer.from(value), 'text/plain; charset=utf-8');
  if (value === undefined) return new NodeReply(new Uint8Array(0), 'application/octet-stream');
  return json(value);
}
