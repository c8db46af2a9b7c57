// The reference node's functions: small, real workloads for trying the gateway out and for tests.
import { createHash } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { Code, GatewayError } from '../errors.js';
import { json, reply, type NodeFunction, type NodeRequest } from './function-host.js';

/** Largest matrix product computed, in multiply-adds (keeps one call well under a second). */
const MATMUL_MAX_OPS = 2 ** 27;
/** Largest N for primes. */
const PRIMES_MAX = 2_000_000_000;
const SEGMENT = 1 << 18;
/** Longest sleep. */
const SLEEP_MAX_MS = 3_600_000;

function invalid(message: string): GatewayError {
  return new GatewayError(Code.INVALID_ARGUMENT, message);
}

/** A number from a payload that is either the bare number or JSON {"<field>": n}. */
function numberArg(req: NodeRequest, field: string): number {
  const text = req.text().trim();
  const value = /^[{[]/.test(text) ? (req.json<Record<string, unknown>>()?.[field]) : Number(text);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`payload must be a number or {"${field}": number}`);
  return value;
}

function isMatrix(m: unknown): m is number[][] {
  return Array.isArray(m) && m.length > 0 && m.every((row) => Array.isArray(row) && row.length === (m[0] as unknown[]).length && row.length > 0 && row.every((x) => typeof x === 'number' && Number.isFinite(x)));
}

/** `echo`: the payload back, with its content type. */
export const echo: NodeFunction = (req) => reply(req.payload, req.contentType || 'application/octet-stream');

/** `sha256`: hex SHA-256 of the payload. */
export const sha256: NodeFunction = (req) => createHash('sha256').update(req.payload).digest('hex');

/** `sort`: a JSON array of numbers, sorted ascending. */
export const sort: NodeFunction = (req) => {
  const values = req.json<unknown>();
  if (!Array.isArray(values) || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) throw invalid('payload must be a JSON array of numbers');
  return json(Array.from(Float64Array.from(values as number[]).sort()));
};

/** `matmul`: the product of two JSON matrices, given as {"a": [[..]], "b": [[..]]} or [a, b]. */
export const matmul: NodeFunction = (req) => {
  const body = req.json<unknown>();
  const [a, b] = Array.isArray(body) ? body : [(body as { a?: unknown })?.a, (body as { b?: unknown })?.b];
  if (!isMatrix(a) || !isMatrix(b)) throw invalid('payload must be {"a": matrix, "b": matrix} with matrices as arrays of equal-length number rows');
  const n = a.length;
  const k = a[0]!.length;
  const m = b[0]!.length;
  if (b.length !== k) throw invalid(`cannot multiply ${n}x${k} by ${b.length}x${m}`);
  if (n * k * m > MATMUL_MAX_OPS) throw invalid(`product too large (${n}x${k} by ${k}x${m})`);
  const out: number[][] = [];
  const row = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    row.fill(0);
    const ai = a[i]!;
    for (let p = 0; p < k; p++) {
      const x = ai[p]!;
      const bp = b[p]!;
      for (let j = 0; j < m; j++) row[j]! += x * bp[j]!;
    }
    out.push(Array.from(row));
  }
  return json(out);
};

/**
 * `primes`: how many primes are below N (a segmented sieve), streaming progress as it goes
 * ({"below": x, "count": c} payloads); yields between segments, so it stops when aborted.
 */
export const primes: NodeFunction = async (req) => {
  const n = numberArg(req, 'n');
  if (!Number.isInteger(n) || n < 0 || n > PRIMES_MAX) throw invalid(`N must be a whole number from 0 to ${PRIMES_MAX}`);
  const limit = Math.floor(Math.sqrt(n)) + 1;
  const small = sieve(limit);
  const base: number[] = [];
  for (let i = 2; i < limit; i++) if (small[i]) base.push(i);
  let count = 0;
  const segments = Math.ceil(n / SEGMENT);
  const every = Math.max(1, Math.ceil(segments / 50));
  const mark = new Uint8Array(SEGMENT);
  for (let s = 0, low = 0; low < n; s++, low += SEGMENT) {
    const high = Math.min(n, low + SEGMENT);
    mark.fill(1);
    for (const p of base) {
      if (p * p >= high) break;
      for (let j = Math.max(p * p, Math.ceil(low / p) * p); j < high; j += p) mark[j - low] = 0;
    }
    for (let i = Math.max(low, 2); i < high; i++) if (mark[i - low]) count++;
    if ((s + 1) % every === 0 && high < n) {
      req.progress(high / n, JSON.stringify({ below: high, count }));
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (req.signal.aborted) throw req.signal.reason;
    }
  }
  return json({ n, count });
};

function sieve(limit: number): Uint8Array {
  const flags = new Uint8Array(limit + 1).fill(1);
  flags[0] = 0;
  if (limit >= 1) flags[1] = 0;
  for (let i = 2; i * i <= limit; i++) if (flags[i]) for (let j = i * i; j <= limit; j += i) flags[j] = 0;
  return flags;
}

/** `sleep`: waits the given milliseconds (a number or {"ms": n}), stopping at once when aborted. */
export const sleep: NodeFunction = async (req) => {
  const ms = numberArg(req, 'ms');
  if (ms < 0 || ms > SLEEP_MAX_MS) throw invalid(`ms must be from 0 to ${SLEEP_MAX_MS}`);
  await sleepFor(ms, undefined, { signal: req.signal });
  return `slept ${ms}`;
};

/** The reference node's function table. */
export const referenceFunctions: Readonly<Record<string, NodeFunction>> = { echo, sha256, sort, matmul, primes, sleep };
