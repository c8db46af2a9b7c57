// Runs one Invoke for any front end (WebSocket or HTTP): validates and authorizes it, hands it to the
// ComputeService, and guarantees its caller exactly one terminal answer with progress only before it.
import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { Code, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { encodeNodeFrame } from '../protocol/codec.js';
import type { InvokeBody, NodeFrame, ResultBody } from '../protocol/frames.js';
import { checkInvokeGrant, checkJobTopic, checkMetadata, invokeDeadline } from './requests.js';
import type { ComputeService, EventsService, InvokeCall } from './services.js';

/** Content type of job-topic events: each payload is one protobuf NodeFrame (progress, result or error). */
export const JOB_EVENT_CONTENT_TYPE = 'application/x-relaygate-node-frame';

/** Past the deadline the gateway answers DEADLINE_EXCEEDED itself if the compute service has not; the slack lets the service's own answer win. */
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

/** A running invocation. */
export class Invocation {
  private finished = false;

  constructor(
    readonly requestId: string,
    private readonly controller: AbortController,
    private readonly outcome: InvokeOutcome,
    private readonly onEnd: () => void,
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
    this.controller.abort(err);
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

  private finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.onEnd();
    return true;
  }
}

/** Starts invocations; every started one ends with exactly one terminal answer. */
export class Invoker {
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private nextId = 0;
  private readonly running = new Set<Invocation>();

  constructor(
    private readonly compute: ComputeService,
    private readonly events: EventsService,
    private readonly options: InvokerOptions,
    private readonly log: Logger,
  ) {}

  /** Checks `body` against `principal` (throws the GatewayError to answer with) and starts it. */
  start(principal: Principal, body: InvokeBody, outcome: InvokeOutcome): Invocation {
    checkInvokeGrant(principal, body.function);
    checkMetadata(body.metadata);
    if (body.jobTopic !== '') checkJobTopic(principal, body.jobTopic);

    const requestId = `${this.idPrefix}-${(++this.nextId).toString(36)}`;
    const deadlineAtMs = invokeDeadline(Date.now(), body.timeoutMs, this.options.invokeTimeout, this.options.invokeMaxTimeout);
    const controller = new AbortController();
    const job = body.jobTopic === '' ? undefined : this.jobPublisher(principal.tenant, body.jobTopic, requestId);
    let timer: NodeJS.Timeout | undefined;
    const invocation: Invocation = new Invocation(requestId, controller, outcome, () => {
      clearTimeout(timer);
      this.running.delete(invocation);
    }, job);
    this.running.add(invocation);
    timer = setTimeout(() => {
      invocation.end(new GatewayError(Code.DEADLINE_EXCEEDED, 'deadline exceeded'));
    }, deadlineAtMs - Date.now() + DEADLINE_SLACK_MS);

    const call: InvokeCall = {
      requestId,
      function: body.function,
      payload: body.payload,
      contentType: body.contentType,
      deadlineAtMs,
      subject: principal.subject,
      tenant: principal.tenant,
      metadata: body.metadata,
      signal: controller.signal,
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
