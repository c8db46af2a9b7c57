// Runs one Invoke for any front end (WebSocket or HTTP): validates and authorizes it, hands it to the
// ComputeService, and guarantees its caller exactly one terminal answer with progress only before it.
import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { Code, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeNodeFrame } from '../protocol/codec.js';
import type { AbortListener, CallSignal } from '../nodes/node-link.js';
import type { InvokeBody, NodeFrame, ResultBody } from '../protocol/frames.js';
import { DeadlineTimers, type Expiring } from '../timing/deadline-timers.js';
import { checkInvokeGrant, checkJobTopic, checkMetadata, invokeDeadline } from './requests.js';
import type { ComputeService, EventsService, InvokeCall } from './services.js';

/** Content type of job-topic events: each payload is one protobuf NodeFrame (progress, result or error). */
export const JOB_EVENT_CONTENT_TYPE = 'application/x-relaygate-node-frame';

/**
 * Past the deadline the gateway answers DEADLINE_EXCEEDED itself if the compute service has not; the
 * slack lets the service's own answer win (the deadline timers add up to one tick of 50 ms).
 */
const DEADLINE_SLACK_MS = 250;

/** Where one invocation's answers go: progress zero or more times, then exactly one of result/error. */
export interface InvokeOutcome {
  progress(fraction: number, payload: Uint8Array): void;
  result(result: ResultBody): void;
  error(err: GatewayError): void;
}

/** Deadline settings: default and maximum invoke timeout, in ms. */
export interface InvokerOptions {
  invokeTimeout: number;
  invokeMaxTimeout: number;
}

/**
 * The abort signal of one invocation: what node links use of an AbortSignal (aborted, abort
 * listeners), without an EventTarget per invoke. Listeners added after the abort are not called.
 */
export class InvocationSignal implements CallSignal {
  aborted = false;
  reason: unknown;
  private listeners: AbortListener[] | undefined;

  /** `once` needs no handling: the signal aborts at most once and then forgets its listeners. */
  addEventListener(type: 'abort', listener: AbortListener, _options?: { once?: boolean }): void {
    if (type !== 'abort' || this.aborted) return;
    const listeners = (this.listeners ??= []);
    if (!listeners.includes(listener)) listeners.push(listener);
  }

  removeEventListener(type: 'abort', listener: AbortListener): void {
    const listeners = this.listeners;
    if (type !== 'abort' || !listeners) return;
    const at = listeners.indexOf(listener);
    if (at >= 0) listeners.splice(at, 1);
  }

  /** Aborts with `reason` (once) and calls each listener once. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (!listeners) return;
    const event = { type: 'abort', target: this } as unknown as Event;
    for (const listener of listeners) {
      if (typeof listener === 'function') listener(event);
      else listener.handleEvent(event);
    }
  }
}

/** A running invocation. */
export class Invocation implements Expiring {
  private finished = false;
  readonly signal = new InvocationSignal();
  /** @internal the handle of its deadline in the Invoker's timers. */
  deadlineSlot = 0;

  constructor(
    readonly requestId: string,
    private readonly outcome: InvokeOutcome,
    private readonly invoker: Invoker,
    private readonly job: ((frame: NodeFrame) => void) | undefined,
  ) {}

  /** True once the terminal answer was given. */
  get done(): boolean {
    return this.finished;
  }

  /** Ends the invocation with `err` (unless it already ended) and aborts the node's request. */
  end(err: GatewayError): void {
    if (this.finish()) {
      this.outcome.error(err);
      this.job?.({ error: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } });
    }
    this.signal.abort(err);
  }

  /** @internal the sink handed to the ComputeService. */
  progress(fraction: number, payload: Uint8Array): void {
    if (this.finished) return;
    this.outcome.progress(fraction, payload);
    this.job?.({ progress: { fraction, payload } });
  }

  /** @internal */
  result(result: ResultBody): void {
    if (!this.finish()) return;
    this.outcome.result(result);
    this.job?.({ result });
  }

  /** @internal */
  error(err: GatewayError): void {
    if (!this.finish()) return;
    this.outcome.error(err);
    this.job?.({ error: { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs } });
  }

  /** @internal the gateway's own deadline (the compute service's plus slack) passed. */
  expire(): void {
    this.end(new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded'));
  }

  private finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.invoker.ended(this);
    return true;
  }
}

/** Starts invocations; every started one ends with exactly one terminal answer. */
export class Invoker {
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private nextId = 0;
  private readonly running = new Set<Invocation>();
  private readonly deadlines = new DeadlineTimers<Invocation>();

  constructor(
    private readonly compute: ComputeService,
    private readonly events: EventsService,
    private readonly options: InvokerOptions,
    private readonly log: Logger,
  ) {}

  /** Checks `body` against `principal` (throws the GatewayError to answer with) and starts it. */
  start(principal: Principal, body: InvokeBody, outcome: InvokeOutcome, nowMs = Date.now()): Invocation {
    checkInvokeGrant(principal, body.function);
    checkMetadata(body.metadata);
    if (body.jobTopic !== '') checkJobTopic(principal, body.jobTopic);

    const requestId = `${this.idPrefix}-${(++this.nextId).toString(36)}`;
    const deadlineAtMs = invokeDeadline(nowMs, body.timeoutMs, this.options.invokeTimeout, this.options.invokeMaxTimeout);
    const job = body.jobTopic === '' ? undefined : this.jobPublisher(principal.tenant, body.jobTopic, requestId);
    const invocation = new Invocation(requestId, outcome, this, job);
    this.running.add(invocation);
    invocation.deadlineSlot = this.deadlines.add(invocation, deadlineAtMs + DEADLINE_SLACK_MS);

    const call: InvokeCall = {
      requestId,
      function: body.function,
      payload: body.payload,
      contentType: body.contentType,
      deadlineAtMs,
      subject: principal.subject,
      tenant: principal.tenant,
      metadata: body.metadata,
      signal: invocation.signal,
    };
    try {
      this.compute.invoke(call, invocation);
    } catch (err) {
      const failure = toGatewayError(err);
      if (failure.code === Code.INTERNAL) this.log.error({ err, requestId }, 'compute service threw');
      invocation.error(failure);
    }
    return invocation;
  }

  /** @internal an invocation gave its terminal answer. */
  ended(invocation: Invocation): void {
    this.running.delete(invocation);
    this.deadlines.remove(invocation, invocation.deadlineSlot);
  }

  /** Invocations started and not yet answered (WebSocket and HTTP alike). */
  get inFlight(): number {
    return this.running.size;
  }

  /** Ends every running invocation with `err` and aborts its node request. */
  endAll(err: GatewayError): void {
    for (const invocation of [...this.running]) invocation.end(err);
  }

  private jobPublisher(tenant: string, topic: string, requestId: string): (frame: NodeFrame) => void {
    return (frame) => {
      this.events.publish(tenant, topic, encodeNodeFrame(frame), JOB_EVENT_CONTENT_TYPE, { job: true, source: 'job' }).catch((err: unknown) => {
        this.log.warn({ err: toGatewayError(err).message, requestId, topic }, 'job event not published');
      });
    };
  }
}
