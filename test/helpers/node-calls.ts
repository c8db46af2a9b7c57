// Drives a NodeLink call to its single answer, recording everything the handler saw.
import type { NodeCall, NodeFailure, NodeLink } from '../../src/nodes/node-link.js';

export interface CallOutcome {
  progress: { fraction: number; payload: string }[];
  result?: { payload: Buffer; contentType: string; nodeId: string; durationMs: number; drain: boolean };
  failure?: NodeFailure;
  /** Terminal callbacks received: must be exactly 1. */
  terminals: number;
}

let counter = 0;

/** A NodeCall with sensible defaults. */
export function nodeCall(fn: string, payload: string | Buffer, over: Partial<NodeCall> = {}): NodeCall {
  return {
    requestId: `req-${process.pid}-${++counter}`,
    function: fn,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    contentType: 'text/plain',
    deadlineAtMs: Date.now() + 10_000,
    subject: 'user-1',
    tenant: 'acme',
    metadata: {},
    signal: new AbortController().signal,
    ...over,
  };
}

/**
 * Starts a call; `outcome` fills in as answers arrive and `done` resolves at the first terminal.
 * Later terminals are still counted, so tests can assert exactly one.
 */
export function startCall(link: NodeLink, call: NodeCall): { outcome: CallOutcome; done: Promise<CallOutcome> } {
  const outcome: CallOutcome = { progress: [], terminals: 0 };
  let resolve!: (o: CallOutcome) => void;
  const done = new Promise<CallOutcome>((r) => { resolve = r; });
  link.call(call, {
    onProgress(fraction, payload) {
      outcome.progress.push({ fraction, payload: Buffer.from(payload).toString() });
    },
    onResult(payload, contentType, nodeId, durationMs, drain) {
      outcome.terminals++;
      outcome.result ??= { payload: Buffer.from(payload), contentType, nodeId, durationMs, drain };
      resolve(outcome);
    },
    onError(failure) {
      outcome.terminals++;
      outcome.failure ??= failure;
      resolve(outcome);
    },
  });
  return { outcome, done };
}

/** Calls and waits for the single answer. */
export function callOnce(link: NodeLink, call: NodeCall): Promise<CallOutcome> {
  return startCall(link, call).done;
}

/** Polls `check` until it is true (generous timeout; no fixed sleeps in tests). */
export async function until(check: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
