// Drives NodePoolCompute (the ComputeService) directly in tests, recording every answer.
import { Registry } from 'prom-client';
import { computeOptionsFrom, NodePoolCompute } from '../../src/balancer/compute-service.js';
import { loadSettings } from '../../src/config.js';
import type { GatewayError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { ResultBody } from '../../src/protocol/frames.js';
import type { InvokeCall } from '../../src/router/services.js';
import type { NodeProcess } from './nodes.js';

/** Everything one invoke received; `terminals` must end at exactly 1. */
export interface Answer {
  progress: { fraction: number; payload: string }[];
  result?: ResultBody;
  error?: GatewayError;
  terminals: number;
  done: Promise<void>;
}

let counter = 0;

/** Starts an invoke on `compute` and records its answers. */
export function invoke(
  compute: NodePoolCompute,
  fn: string,
  payload: string | Uint8Array,
  o: { timeoutMs?: number; signal?: AbortSignal; metadata?: Record<string, string>; requestId?: string } = {},
): Answer {
  let resolve!: () => void;
  const answer: Answer = { progress: [], terminals: 0, done: new Promise<void>((r) => { resolve = r; }) };
  const call: InvokeCall = {
    requestId: o.requestId ?? `t${process.pid}-${++counter}`,
    function: fn,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    contentType: 'text/plain',
    deadlineAtMs: Date.now() + (o.timeoutMs ?? 10_000),
    subject: 'alice',
    tenant: 'acme',
    metadata: o.metadata ?? {},
    signal: o.signal ?? new AbortController().signal,
  };
  compute.invoke(call, {
    progress: (fraction, p) => { answer.progress.push({ fraction, payload: Buffer.from(p).toString() }); },
    result: (r) => { answer.result = r; answer.terminals++; resolve(); },
    error: (e) => { answer.error = e; answer.terminals++; resolve(); },
  });
  return answer;
}

/** A compute service over `nodes` with test-friendly settings. */
export function computeFor(nodes: string[], env: Record<string, string> = {}, registry = new Registry()): NodePoolCompute {
  const { values } = loadSettings('gateway', {
    ...(nodes.length > 0 ? { RELAYGATE_NODES: nodes.join(',') } : {}),
    RELAYGATE_HEALTH_INTERVAL: '200ms',
    RELAYGATE_SLOW_START: '0',
    ...env,
  }, []);
  return new NodePoolCompute(computeOptionsFrom(values), process.env.COMPUTE_TEST_LOG ? createLogger({ level: process.env.COMPUTE_TEST_LOG, destination: 2 }) : silentLogger(), { registry });
}

/** Calls running at a reference or SDK node, from its /healthz. */
export async function nodeInFlight(node: NodeProcess): Promise<number> {
  const res = await fetch(`${node.url}/healthz`);
  return ((await res.json()) as { inFlight: number }).inFlight;
}

/** The payload of a result as text. */
export const text = (r: ResultBody | undefined): string => Buffer.from(r?.payload ?? []).toString();
