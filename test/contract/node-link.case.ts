// One contract for every NodeLink (HTTP/1.1 and the binary link): run by
// test/integration/link-contract.test.ts against a real node process (built with the SDK) that
// serves both. Results, progress, error mapping, deadlines, cancellation reaching the node,
// unsent versus maybe-run failures, drain and health must behave the same on each.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { createNodeLink } from '../../src/nodes/create-link.js';
import type { NodeLink } from '../../src/nodes/node-link.js';
import { spawnLinkNode, type LinkNodeProcess } from '../helpers/link-node-process.js';
import { callOnce, nodeCall, startCall, until, type CallOutcome } from '../helpers/node-calls.js';

/** How a link reaches a node process: its URL for this kind of link. */
export type NodeUrlOf = (node: { port: number; linkPort: number }) => string;

async function oneAnswerEach(outcomes: CallOutcome[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  expect(outcomes.map((o) => o.terminals)).toEqual(outcomes.map(() => 1));
}

/** Registers the NodeLink contract for the link that `urlOf` selects. */
export function describeNodeLinkContract(name: string, urlOf: NodeUrlOf): void {
  describe(`NodeLink contract: ${name}`, () => {
    let node: LinkNodeProcess;
    let link: NodeLink;
    const extra: (() => Promise<void>)[] = [];

    const open = (url: string): NodeLink => {
      const l = createNodeLink(url, { connections: 8 });
      extra.push(() => l.close());
      return l;
    };

    beforeAll(async () => {
      node = await spawnLinkNode({ LINK_NODE_ID: 'contract-node' });
      link = createNodeLink(urlOf(node), { connections: 8 });
    });
    afterAll(async () => {
      await link.close();
      await node.stop();
    });
    afterEach(async () => {
      for (const fn of extra.splice(0).reverse()) await fn();
    });

    it('returns the result bytes, content type and the node id', async () => {
      const payload = Buffer.from([0, 1, 2, 250, 255]);
      const out = await callOnce(link, nodeCall('echo', payload, { contentType: 'application/x-test' }));
      expect(out.failure).toBeUndefined();
      expect(out.result!.payload.equals(payload)).toBe(true);
      expect(out.result!.contentType).toBe('application/x-test');
      expect(out.result!.nodeId).toBe('contract-node');
      expect(out.result!.durationMs).toBeGreaterThanOrEqual(0);
      expect(out.result!.drain).toBe(false);
    });

    it('passes subject, tenant, metadata and the time left to the node', async () => {
      const out = await callOnce(link, nodeCall('whoami', '', {
        subject: 'alice', tenant: 'acme', metadata: { trace: 'abc-1', lang: 'en' }, deadlineAtMs: Date.now() + 8000,
      }));
      const seen = JSON.parse(out.result!.payload.toString());
      expect(seen).toMatchObject({ subject: 'alice', tenant: 'acme', metadata: { trace: 'abc-1', lang: 'en' } });
      expect(seen.deadlineLeft).toBeGreaterThan(4000);
      expect(seen.deadlineLeft).toBeLessThanOrEqual(8000);
    });

    it('streams progress in order, then the result', async () => {
      const out = await callOnce(link, nodeCall('steps', '4'));
      expect(out.progress).toEqual([1, 2, 3, 4].map((i) => ({ fraction: i / 4, payload: `step ${i}` })));
      expect(out.result!.payload.toString()).toBe('done');
      await oneAnswerEach([out]);
    });

    it.each([
      ['invalid argument', `${Code.INVALID_ARGUMENT}`, Code.INVALID_ARGUMENT],
      ['deadline exceeded', `${Code.DEADLINE_EXCEEDED}`, Code.DEADLINE_EXCEEDED],
      ['resource exhausted', `${Code.RESOURCE_EXHAUSTED}:1500`, Code.RESOURCE_EXHAUSTED],
      ['unavailable', `${Code.UNAVAILABLE}:1000`, Code.UNAVAILABLE],
      ['permission denied', `${Code.PERMISSION_DENIED}`, Code.PERMISSION_DENIED],
    ])('a node error (%s) keeps its code and is not a connection error', async (_label, payload, code) => {
      const out = await callOnce(link, nodeCall('fail', payload));
      expect(out.failure!.error.code).toBe(code);
      expect(out.failure).toMatchObject({ unsent: false, connectionError: false, drain: false });
      if (payload.includes(':')) expect(out.failure!.error.retryAfterMs).toBeGreaterThanOrEqual(Number(payload.split(':')[1]));
    });

    it('an unknown function is NOT_FOUND; a crashing function is INTERNAL without its details', async () => {
      const missing = await callOnce(link, nodeCall('no-such-fn', ''));
      expect(missing.failure!.error.code).toBe(Code.NOT_FOUND);
      const crash = await callOnce(link, nodeCall('crash', ''));
      expect(crash.failure!.error.code).toBe(Code.INTERNAL);
      expect(crash.failure!.error.message).not.toMatch(/secret|boom/);
      expect(crash.failure).toMatchObject({ unsent: false, connectionError: false });
    });

    it('a deadline ends the call with DEADLINE_EXCEEDED and aborts it at the node', async () => {
      const call = nodeCall('sleep', '30000', { deadlineAtMs: Date.now() + 400 });
      const out = await callOnce(link, call);
      expect(out.failure!.error.code).toBe(Code.DEADLINE_EXCEEDED);
      expect(out.failure!.unsent).toBe(false);
      await until(() => node.seen('aborted').includes(call.requestId), 15_000, 'the node to observe the abort');
      await oneAnswerEach([out]);
    });

    it('cancellation ends the call with CANCELLED and reaches the node', async () => {
      const ac = new AbortController();
      const call = nodeCall('sleep', '30000', { signal: ac.signal });
      const running = startCall(link, call);
      await until(() => node.seen('started').includes(call.requestId), 15_000, 'the node to start');
      ac.abort();
      const out = await running.done;
      expect(out.failure!.error.code).toBe(Code.CANCELLED);
      await until(() => node.seen('aborted').includes(call.requestId), 15_000, 'the node to observe the abort');
      await oneAnswerEach([out]);
    });

    it('an already-cancelled or expired call ends at once and never reaches the node', async () => {
      const ac = new AbortController();
      ac.abort();
      const cancelled = nodeCall('echo', 'x', { signal: ac.signal });
      const expired = nodeCall('echo', 'x', { deadlineAtMs: Date.now() - 1 });
      const [a, b] = await Promise.all([callOnce(link, cancelled), callOnce(link, expired)]);
      expect(a.failure!.error.code).toBe(Code.CANCELLED);
      expect(b.failure!.error.code).toBe(Code.DEADLINE_EXCEEDED);
      await callOnce(link, nodeCall('echo', 'flush'));
      expect(node.seen('started')).not.toContain(cancelled.requestId);
      expect(node.seen('started')).not.toContain(expired.requestId);
    });

    it('health: true while the node serves, false when it cannot be reached', async () => {
      expect(await link.checkHealth(5000)).toBe(true);
      const gone = await spawnLinkNode();
      const url = urlOf(gone);
      await gone.stop();
      const dead = open(url);
      expect(await dead.checkHealth(1000)).toBe(false);
    });

    it('a node that cannot be reached fails the call as unsent (safe to retry elsewhere)', async () => {
      const gone = await spawnLinkNode();
      const url = urlOf(gone);
      await gone.stop();
      const out = await callOnce(open(url), nodeCall('echo', 'x'));
      expect(out.failure!.error.code).toBe(Code.UNAVAILABLE);
      expect(out.failure).toMatchObject({ unsent: true, connectionError: true });
      await oneAnswerEach([out]);
    });

    it('a node killed mid-request fails the call as maybe-run UNAVAILABLE (never retried)', async () => {
      const victim = await spawnLinkNode();
      extra.push(() => victim.stop());
      const l = open(urlOf(victim));
      const calls = Array.from({ length: 4 }, () => nodeCall('sleep', '30000'));
      const running = calls.map((c) => startCall(l, c));
      await until(() => calls.every((c) => victim.seen('started').includes(c.requestId)), 15_000, 'calls to start');
      victim.child.kill('SIGKILL');
      const outs = await Promise.all(running.map((r) => r.done));
      for (const o of outs) {
        expect(o.failure!.error.code).toBe(Code.UNAVAILABLE);
        expect(o.failure).toMatchObject({ unsent: false, connectionError: true });
      }
      await oneAnswerEach(outs);
    });

    it('drain: in-flight calls finish and say drain; health fails; later calls never run unmarked', async () => {
      const draining = await spawnLinkNode();
      extra.push(() => draining.stop());
      const l = open(urlOf(draining));
      expect(await l.checkHealth(5000)).toBe(true);
      const call = nodeCall('sleep', '800');
      const running = startCall(l, call);
      await until(() => draining.seen('started').includes(call.requestId), 15_000, 'call to start');
      draining.child.kill('SIGTERM');
      await until(() => draining.entries.some((e) => e.msg === 'draining'), 15_000, 'the node to start draining');
      // A call sent while the node drains is either refused as unsent or answered — marked drain either way.
      const late = await callOnce(l, nodeCall('echo', 'late'));
      if (late.failure) expect(late.failure).toMatchObject({ unsent: true, drain: true });
      else expect(late.result!.drain).toBe(true);
      expect(await l.checkHealth(1000)).toBe(false);
      const out = await running.done;
      expect(out.result!.payload.toString()).toBe('slept 800');
      expect(out.result!.drain).toBe(true);
      expect(await draining.exited).toBe(0);
      await oneAnswerEach([out, late]);
    });
  });
}
