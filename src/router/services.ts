// The services the router drives: compute (balancer -> node link) and events (bus -> hub).
// The router depends on these interfaces; gateway.ts picks the implementations.
import type { GatewayError } from '../errors.js';
import type { NodeCall } from '../nodes/node-link.js';
import type { AckBody, ResultBody, StreamPosition } from '../protocol/frames.js';
import type { Session } from './session.js';

/**
 * One forwarded invocation, already authorized and validated: exactly what a node link carries
 * (requestId travels as x-relaygate-request-id; deadlineAtMs covers queueing and every attempt;
 * signal aborts on Cancel, client disconnect or drain timeout).
 */
export type InvokeCall = NodeCall;

/** Where an invocation's answers go. The router guarantees the client sees exactly one terminal frame. */
export interface InvokeSink {
  progress(fraction: number, payload: Uint8Array): void;
  result(result: ResultBody): void;
  error(err: GatewayError): void;
}

/** Forwards invocations to compute nodes. */
export interface ComputeService {
  /** Starts `call`; answers arrive on `sink` (zero or more progress, then one result or error). */
  invoke(call: InvokeCall, sink: InvokeSink): void;
  /** At least one node can take work. */
  ready(): boolean;
  /** Stops health checks and closes node connections (after in-flight work is done or aborted). */
  close(): Promise<void>;
}

/** How an event entered the gateway. `job`: a job topic (Invoke.job_topic), which keeps history by default (RELAYGATE_JOB_HISTORY). */
export interface PublishOptions {
  readonly job?: boolean;
  /** Entry path, for metrics. */
  readonly source?: 'ws' | 'http' | 'job';
}

/** Subscriptions and publishing through the bus, tenant-namespaced. Names are validated and authorized by the router. */
export interface EventsService {
  /**
   * Subscribes `session` to `topic` of `tenant`. With `recover`, missed events after `since` are sent
   * to the session first (as Event frames, id 0), in order; resolves with the Ack to send.
   * Rejects with GatewayError (e.g. UNAVAILABLE when the bus is down).
   */
  subscribe(session: Session, tenant: string, topic: string, recover: boolean, since: StreamPosition | undefined): Promise<AckBody>;
  /** Ends the session's subscription (no-op when not subscribed). */
  unsubscribe(session: Session, tenant: string, topic: string): void;
  /** Drops every subscription of a closing session. */
  dropSession(session: Session): void;
  /** Publishes an event; resolves with its stream position when the topic keeps history (job topics: pass `{ job: true }`). */
  publish(tenant: string, topic: string, payload: Uint8Array, contentType: string, options?: PublishOptions): Promise<StreamPosition | undefined>;
  /** The bus is connected and its delivery probe passes. */
  ready(): boolean;
  close(): Promise<void>;
}

/** An Ack's body for a successful subscribe/publish, for reuse. */
export type { AckBody };
