// Faults with real node processes: one slow node, one SIGKILLed mid-request (then restarted), one
// answering 503. Every invoke gets exactly one answer and nothing that may have run runs twice.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodePoolCompute } from '../../src/balancer/compute-service.js';
import { Code } from '../../src/errors.js';
import { computeFor, invoke, text, type Answer } from '../helpers/compute.js';
import { executions, spawnCountingNode, spawnFaultFleet, waitUntil, type FaultFleet } from '../helpers/nodes.js';
import { freePort } from '../helpers/redis.js';

describe('slow, killed and failing nodes', () => {
  let fleet: FaultFleet;
  let victimPort: number;
  let compute: NodePoolCompute;
  const registry = new Registry();

  beforeAll(async () => {
    victimPort = await freePort();
    fleet = await spawnFaultFleet({ slowDelayMs: 200, victimDelayMs: 3_000, victimPort });
    compute = computeFor([fleet.slow.url, fleet.victim.url, fleet.failing.url], {
      RELAYGATE_EJECT_AFTER: '2',
      RELAYGATE_EJECT_BASE: '300ms',
      RELAYGATE_EJECT_MAX: '2s',
      RELAYGATE_HEALTH_INTERVAL: '150ms',
      RELAYGATE_HEALTH_FALL: '2',
      RELAYGATE_HEALTH_RISE: '1',
      RELAYGATE_SLOW_START: '500ms',
    }, registry);
  });

  afterAll(async () => {
    await compute?.close();
    await fleet?.cleanUp();
  });

  const snapshotOf = (key: string) => compute.snapshot().find((n) => n.url.endsWith(`:${key}`))!;

  it('gives every invoke exactly one answer and runs nothing twice when a node dies mid-request', async () => {
    const answers: { id: string; answer: Answer }[] = [];
    const send = (n: number, tag: string): void => {
      for (let i = 0; i < n; i++) {
        const id = `${tag}-${i}-${Date.now()}`;
        answers.push({ id, answer: invoke(compute, 'work', '', { requestId: id, timeoutMs: 20_000 }) });
      }
    };
    send(24, 'wave1');
    // SIGKILL the victim while calls are running on it.
    await waitUntil(() => executions(fleet.files.victim).length >= 2, 10_000, 'calls running on the victim');
    await fleet.victim.kill();
    // A second wave while the victim is dead: calls sent its way never reach it and go elsewhere.
    send(16, 'wave2');
    await Promise.all(answers.map((a) => a.answer.done));
    // Nothing arrives late either.
    await new Promise((r) => setTimeout(r, 300));
    for (const { answer } of answers) expect(answer.terminals).toBe(1);

    const ranOn = {
      slow: executions(fleet.files.slow),
      victim: executions(fleet.files.victim),
      failing: executions(fleet.files.failing),
    };
    const all = fleet.allExecutions();
    expect(new Set(all).size).toBe(all.length); // no request executed twice

    for (const { id, answer } of answers) {
      if (ranOn.victim.includes(id)) {
        // Reached the dying node, so it may have run: never re-run, the client is told UNAVAILABLE.
        expect(answer.error?.code).toBe(Code.UNAVAILABLE);
      } else if (ranOn.failing.includes(id)) {
        expect(answer.error?.code).toBe(Code.UNAVAILABLE);
        expect(answer.error?.retryAfterMs).toBe(2_000); // the node's Retry-After: 2
        expect(answer.error?.message).toBe('plain node refuses work');
      } else if (ranOn.slow.includes(id)) {
        expect(JSON.parse(text(answer.result))).toMatchObject({ ok: true, node: 'slow', requestId: id });
      } else {
        // Never ran anywhere (its retries ran out of budget or nodes): UNAVAILABLE, never a result.
        expect(answer.error?.code).toBe(Code.UNAVAILABLE);
      }
    }
    // Calls sent to the dead node were retried elsewhere.
    expect(ranOn.slow.filter((id) => id.startsWith('wave2')).length).toBeGreaterThan(0);
    expect(ranOn.victim.length).toBeGreaterThanOrEqual(2);
    expect(ranOn.slow.length).toBeGreaterThan(0);

    // The dead node holds nothing in flight, and it is ejected (and the 503 node too).
    const dead = snapshotOf(String(victimPort));
    expect(dead.inFlight).toBe(0);
    expect(dead.inRotation).toBe(false);
    const metrics = await registry.getSingleMetricAsString('relaygate_node_ejections_total');
    expect(metrics).toContain(`node="${fleet.victim.url}"`);
    expect(metrics).toContain(`node="${fleet.failing.url}"`);
    expect(compute.snapshot().reduce((sum, n) => sum + n.inFlight, 0)).toBe(0);
  });

  it('readmits the killed node once it is back, through slow start', async () => {
    fleet.victim = await spawnCountingNode({ countFile: fleet.files.victim, delayMs: 50, id: 'victim', port: victimPort });
    await waitUntil(() => snapshotOf(String(victimPort)).inRotation, 15_000, 'victim back in rotation');
    expect(snapshotOf(String(victimPort)).effectiveWeight).toBeLessThanOrEqual(1);
    let servedByVictim = 0;
    await waitUntil(async () => {
      const batch = Array.from({ length: 6 }, () => invoke(compute, 'work', ''));
      await Promise.all(batch.map((b) => b.done));
      servedByVictim += batch.filter((b) => JSON.parse(text(b.result) || '{}').node === 'victim').length;
      return servedByVictim > 0;
    }, 15_000, 'a call served by the restarted node');
  });
});
