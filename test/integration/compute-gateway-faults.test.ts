// Through a real gateway process over WebSocket: a node SIGKILLed mid-request, a slow one and one
// answering 503. Every Invoke gets exactly one terminal frame, and nothing that may have run runs twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { spawnGateway, testToken, type GatewayProcess } from '../helpers/gateway.js';
import { executions, spawnFaultFleet, waitUntil, type FaultFleet } from '../helpers/nodes.js';
import { TestClient } from '../helpers/ws-client.js';

describe('node faults seen by WebSocket clients', () => {
  let fleet: FaultFleet;
  let gateway: GatewayProcess;
  let client: TestClient;

  beforeAll(async () => {
    fleet = await spawnFaultFleet({ slowDelayMs: 150, victimDelayMs: 5_000 });
    gateway = await spawnGateway({
      RELAYGATE_NODES: [fleet.slow, fleet.victim, fleet.failing].map((n) => n.url).join(','),
      RELAYGATE_EJECT_AFTER: '2',
      RELAYGATE_HEALTH_INTERVAL: '200ms',
    });
    client = await TestClient.connect(`ws://127.0.0.1:${gateway.port}/v1/ws`, { token: await testToken(), subprotocol: 'json' });
  });
  afterAll(async () => {
    client?.close();
    gateway?.kill('SIGKILL');
    await gateway?.exited;
    await fleet?.cleanUp();
  });

  it('answers every Invoke exactly once', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => i + 1);
    for (const id of ids.slice(0, 20)) client.send({ id, invoke: { function: 'work', timeoutMs: 20_000 } });
    await waitUntil(() => executions(fleet.files.victim).length >= 2, 10_000, 'calls running on the victim');
    await fleet.victim.kill();
    for (const id of ids.slice(20)) client.send({ id, invoke: { function: 'work', timeoutMs: 20_000 } });

    const terminal = (f: { kind: string }): boolean => f.kind === 'result' || f.kind === 'error';
    await waitUntil(() => ids.every((id) => client.received.some((f) => f.id === id && terminal(f))), 30_000, 'a terminal frame for every invoke');
    await client.ping(1000); // anything late would have arrived before this Pong
    for (const id of ids) expect(client.received.filter((f) => f.id === id && terminal(f))).toHaveLength(1);

    const all = fleet.allExecutions();
    expect(new Set(all).size).toBe(all.length);
    const errors = client.received.filter((f) => f.kind === 'error');
    for (const e of errors) expect(e.body.code).toBe(Code.UNAVAILABLE);
    const results = client.received.filter((f) => f.kind === 'result');
    for (const r of results) expect(r.body.nodeId).toBe('slow');
    // Calls that reached the victim before it died are among the errors; none was retried.
    expect(errors.length).toBeGreaterThanOrEqual(executions(fleet.files.victim).length);
    expect(results.length + errors.length).toBe(ids.length);
  });
});
