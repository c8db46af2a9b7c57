// NodePoolCompute (the ComputeService the router calls) against real node processes.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodePoolCompute } from '../../src/balancer/compute-service.js';
import { Code } from '../../src/errors.js';
import { computeFor, invoke, nodeInFlight, text } from '../helpers/compute.js';
import { executions, spawnCountingNode, spawnPlainNode, spawnReferenceNode, waitUntil, type NodeProcess } from '../helpers/nodes.js';


describe('compute service with reference nodes', () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let compute: NodePoolCompute;

  beforeAll(async () => {
    [a, b] = await Promise.all([spawnReferenceNode({ RELAYGATE_NODE_ID: 'ref-a' }), spawnReferenceNode({ RELAYGATE_NODE_ID: 'ref-b' })]);
    compute = computeFor([a.url, `${b.url}?weight=1`]);
  });
  afterAll(async () => {
    await compute?.close();
    await Promise.all([a?.kill(), b?.kill()]);
  });

  it('forwards a call and names the node that answered', async () => {
    const answer = invoke(compute, 'sha256', 'hello');
    await answer.done;
    expect(answer.error).toBeUndefined();
    expect(text(answer.result)).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(['ref-a', 'ref-b']).toContain(answer.result!.nodeId);
    expect(answer.result!.contentType).toMatch(/^text\/plain/);
    expect(answer.terminals).toBe(1);
  });

  it('spreads calls over both nodes', async () => {
    const answers = Array.from({ length: 20 }, () => invoke(compute, 'sleep', '30'));
    await Promise.all(answers.map((x) => x.done));
    const ids = new Set(answers.map((x) => x.result?.nodeId));
    expect(ids).toEqual(new Set(['ref-a', 'ref-b']));
  });

  it('passes bytes through untouched, with their content type', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const answer = invoke(compute, 'echo', bytes);
    await answer.done;
    expect(Buffer.from(answer.result!.payload).equals(bytes)).toBe(true);
    expect(answer.result!.contentType).toBe('text/plain');
  });

  it('passes a multi-megabyte payload through intact both ways', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const answer = invoke(compute, 'echo', big);
    const digest = invoke(compute, 'sha256', big);
    await Promise.all([answer.done, digest.done]);
    expect(Buffer.from(answer.result!.payload).equals(big)).toBe(true);
    expect(text(digest.result)).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('turns a streamed reply into progress, then the result', async () => {
    const answer = invoke(compute, 'primes', '3000000');
    await answer.done;
    expect(JSON.parse(text(answer.result))).toEqual({ n: 3000000, count: 216816 });
    expect(answer.progress.length).toBeGreaterThan(3);
    const fractions = answer.progress.map((p) => p.fraction);
    expect([...fractions].sort((x, y) => x - y)).toEqual(fractions);
    expect(JSON.parse(answer.progress.at(-1)!.payload)).toHaveProperty('count');
    expect(answer.terminals).toBe(1);
  });

  it('maps node errors: 400 → INVALID_ARGUMENT with the node\'s message, 404 → NOT_FOUND', async () => {
    const bad = invoke(compute, 'sort', '{"not":"an array"}');
    const missing = invoke(compute, 'no-such-function', '');
    const streamedBad = invoke(compute, 'primes', '-5');
    await Promise.all([bad.done, missing.done, streamedBad.done]);
    expect(bad.error?.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.error?.message).toMatch(/array of numbers/);
    expect(missing.error?.code).toBe(Code.NOT_FOUND);
    expect(streamedBad.error?.code).toBe(Code.INVALID_ARGUMENT);
  });

  it('the deadline reaches the node: DEADLINE_EXCEEDED, and the node aborts the work', async () => {
    const answer = invoke(compute, 'sleep', '10000', { timeoutMs: 400, requestId: `deadline-${Date.now()}` });
    await answer.done;
    expect(answer.error?.code).toBe(Code.DEADLINE_EXCEEDED);
    const aborted = (e: { msg?: string; requestId?: unknown }): boolean => e.msg === 'invocation aborted' && typeof e.requestId === 'string' && e.requestId.startsWith('deadline-');
    await Promise.race([a.waitForLog(aborted), b.waitForLog(aborted)]);
  });

  it('cancel aborts the node\'s request: CANCELLED, and the node observes it', async () => {
    const controller = new AbortController();
    const requestId = `cancel-${Date.now()}`;
    const answer = invoke(compute, 'sleep', '10000', { signal: controller.signal, requestId });
    // Let the request reach the node first.
    await waitUntil(async () => (await nodeInFlight(a)) + (await nodeInFlight(b)) === 1, 5_000, 'call running at a node');
    controller.abort();
    await answer.done;
    expect(answer.error?.code).toBe(Code.CANCELLED);
    const seen = (e: { msg?: string; requestId?: unknown }): boolean => e.msg === 'invocation aborted' && e.requestId === requestId;
    await Promise.race([a.waitForLog(seen), b.waitForLog(seen)]);
    await waitUntil(() => compute.snapshot().every((n) => n.inFlight === 0), 5_000, 'in-flight back to 0');
  });

  it('is ready while a node is in rotation', () => {
    expect(compute.ready()).toBe(true);
    expect(compute.snapshot().map((n) => n.inRotation)).toEqual([true, true]);
  });
});

describe('queueing when every node is full', () => {
  let dir: string;
  let node: NodeProcess;
  let compute: NodePoolCompute | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relaygate-queue-'));
    node = await spawnCountingNode({ countFile: join(dir, 'count'), delayMs: 400 });
  });
  afterEach(async () => { await compute?.close(); compute = undefined; });
  afterAll(async () => {
    await node?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues in arrival order up to the queue size; overflow gets RESOURCE_EXHAUSTED with retry_after_ms', async () => {
    compute = computeFor([node.url], { RELAYGATE_NODE_MAX_IN_FLIGHT: '1', RELAYGATE_QUEUE_SIZE: '2' });
    const answers = Array.from({ length: 4 }, (_, i) => invoke(compute!, 'work', '', { requestId: `q-${Date.now()}-${i}` }));
    await Promise.all(answers.map((x) => x.done));
    expect(answers.slice(0, 3).map((x) => x.error?.code)).toEqual([undefined, undefined, undefined]);
    expect(answers[3]!.error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(answers[3]!.error!.retryAfterMs).toBeGreaterThan(0);
    const ran = executions(join(dir, 'count'));
    const ids = answers.map((x) => JSON.parse(text(x.result) || '{}').requestId).filter(Boolean);
    // First come, first served.
    expect(ran.slice(-3)).toEqual(ids);
  });

  it('drains a long queue one freed slot at a time, in arrival order', async () => {
    compute = computeFor([node.url], { RELAYGATE_NODE_MAX_IN_FLIGHT: '2', RELAYGATE_QUEUE_SIZE: '50' });
    const tag = `drain-${Date.now()}`;
    const answers = Array.from({ length: 14 }, (_, i) => invoke(compute!, 'work', '30', { requestId: `${tag}-${String(i).padStart(2, '0')}` }));
    await waitUntil(() => compute!.snapshot()[0]!.inFlight === 2, 5_000, 'two in flight');
    await Promise.all(answers.map((x) => x.done));
    for (const x of answers) expect(x.result).toBeDefined();
    const ran = executions(join(dir, 'count')).filter((id) => id.startsWith(tag));
    expect(ran).toHaveLength(14);
    // Queued calls start in arrival order; two dispatched at the same moment travel over different
    // connections and may swap at the node, but none overtakes a call two places ahead of it.
    const order = [...ran].sort();
    order.forEach((id, i) => { if (i + 2 < order.length) expect(ran.indexOf(id)).toBeLessThan(ran.indexOf(order[i + 2]!)); });
  });

  it('a queued call whose deadline passes gets RESOURCE_EXHAUSTED and never runs', async () => {
    compute = computeFor([node.url], { RELAYGATE_NODE_MAX_IN_FLIGHT: '1', RELAYGATE_QUEUE_SIZE: '10' });
    const requestId = `qt-${Date.now()}`;
    const first = invoke(compute, 'work', '1000');
    const queued = invoke(compute, 'work', '', { timeoutMs: 300, requestId });
    await queued.done;
    expect(queued.error?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(queued.error!.retryAfterMs).toBeGreaterThan(0);
    await first.done;
    expect(executions(join(dir, 'count'))).not.toContain(requestId);
  });

  it('a queued call cancelled by its client leaves the queue and never runs', async () => {
    compute = computeFor([node.url], { RELAYGATE_NODE_MAX_IN_FLIGHT: '1', RELAYGATE_QUEUE_SIZE: '10' });
    const requestId = `qc-${Date.now()}`;
    const controller = new AbortController();
    const first = invoke(compute, 'work', '600');
    const queued = invoke(compute, 'work', '', { signal: controller.signal, requestId });
    const after = invoke(compute, 'work', '');
    controller.abort();
    await queued.done;
    expect(queued.error?.code).toBe(Code.CANCELLED);
    await Promise.all([first.done, after.done]);
    expect(after.result).toBeDefined();
    expect(executions(join(dir, 'count'))).not.toContain(requestId);
  });
});

describe('a node written without the SDK (plain node:http)', () => {
  let plain: NodeProcess;
  let compute: NodePoolCompute;
  beforeAll(async () => {
    plain = await spawnPlainNode({ id: 'plain-1' });
    compute = computeFor([plain.url]);
  });
  afterAll(async () => {
    await compute?.close();
    await plain?.kill();
  });

  it('serves add, receiving tenant, subject, deadline and metadata headers', async () => {
    const answer = invoke(compute, 'add', '{"a":2,"b":40}', { metadata: { trace: 'abc123' }, timeoutMs: 5_000 });
    await answer.done;
    const body = JSON.parse(text(answer.result));
    expect(body.sum).toBe(42);
    expect(body.tenant).toBe('acme');
    expect(body.subject).toBe('alice');
    expect(body.meta).toBe('abc123');
    expect(body.deadlineMs).toBeGreaterThan(3_000);
    expect(body.deadlineMs).toBeLessThanOrEqual(5_000);
    expect(answer.result!.nodeId).toBe('plain-1');
    expect(answer.result!.contentType).toBe('application/json');
  });
});

describe('drain', () => {
  it('a node that answers x-relaygate-drain: 1 leaves the rotation at once; its work finishes', async () => {
    const [x, y] = await Promise.all([spawnReferenceNode({ RELAYGATE_NODE_ID: 'drain-x', RELAYGATE_DRAIN_GRACE: '10s' }), spawnReferenceNode({ RELAYGATE_NODE_ID: 'drain-y' })]);
    // Health checks rarely, so the drain header, not a failed check, takes the node out.
    const compute = computeFor([x.url, y.url], { RELAYGATE_HEALTH_INTERVAL: '30s' });
    try {
      const long = invoke(compute, 'sleep', '800');
      const other = invoke(compute, 'sleep', '800');
      // Both calls are running at their nodes (not just sent) before x is told to drain.
      await waitUntil(async () => (await nodeInFlight(x)) === 1 && (await nodeInFlight(y)) === 1, 5_000, 'one call running on each node');
      x.child.kill('SIGTERM');
      await Promise.all([long.done, other.done]);
      expect([long, other].map((r) => r.result?.payload && text(r.result))).toEqual(['slept 800', 'slept 800']);
      const draining = compute.snapshot().find((n) => n.url === x.url)!;
      expect(draining.draining).toBe(true);
      expect(draining.inRotation).toBe(false);
      // Every later call goes to the other node.
      const later = await Promise.all(Array.from({ length: 4 }, () => invoke(compute, 'sha256', 'x')).map(async (r) => { await r.done; return r; }));
      expect(later.map((r) => r.result?.nodeId)).toEqual(['drain-y', 'drain-y', 'drain-y', 'drain-y']);
      expect(await x.exited).toBe(0);
    } finally {
      await compute.close();
      await Promise.all([x.kill(), y.kill()]);
    }
  });
});
