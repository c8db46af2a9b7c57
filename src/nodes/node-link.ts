// One gateway-to-node connection, whatever the wire: HTTP/1.1 (http-link.ts) or the binary link.
// The balancer picks a node; the compute service calls its link. One contract suite tests both.
import type { GatewayError } from '../errors.js';

/** A listener of a call's abort. */
export type AbortListener = ((event: Event) => void) | { handleEvent(event: Event): void };

/** What a link needs of a call's abort signal. An AbortSignal is one; the gateway passes a lighter one per invoke. */
export interface CallSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

export interface NodeCall {
  readonly requestId: string;
  readonly function: string;
  readonly payload: Uint8Array;
  readonly contentType: string;
  /** Absolute deadline, epoch ms; the link sends the milliseconds left and aborts at the deadline. */
  readonly deadlineAtMs: number;
  readonly subject: string;
  readonly tenant: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly signal: CallSignal;
}

/** How a failed call failed: decides retry, ejection and what the client is told. */
export interface NodeFailure {
  readonly error: GatewayError;
  /** True only when the request provably never reached the node (connect refused/reset before it was written): safe to retry elsewhere. */
  readonly unsent: boolean;
  /** A connection-level failure (counts toward ejection apart from node-reported errors). */
  readonly connectionError: boolean;
  /** The node asked to be taken out of rotation (x-relaygate-drain: 1 or a drain message). */
  readonly drain: boolean;
}

export interface NodeCallHandler {
  onProgress(fraction: number, payload: Uint8Array): void;
  /** `nodeId`: the id the node gave, else its base URL. `drain`: the node asked to leave rotation. */
  onResult(payload: Uint8Array, contentType: string, nodeId: string, durationMs: number, drain: boolean): void;
  onError(failure: NodeFailure): void;
}

export interface NodeLink {
  /** Sends one call; exactly one of onResult/onError follows, after zero or more onProgress. */
  call(call: NodeCall, handler: NodeCallHandler): void;
  /** Active health check (GET /healthz or a link ping): resolves true when the node takes work. */
  checkHealth(timeoutMs: number): Promise<boolean>;
  /** The functions the node said it serves at its last health check or hello, if it said (optional). */
  advertisedFunctions?(): readonly string[] | undefined;
  /** Calls waiting for a connection to the node (a metric; optional). */
  pending?(): number;
  /** Closes connections; in-flight calls end with UNAVAILABLE. */
  close(): Promise<void>;
}
