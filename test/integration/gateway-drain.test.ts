// Graceful drain: stop listening, /readyz 503, GoAway, in-flight work finishes within the grace
// (the rest ends UNAVAILABLE), then 1001 for everyone; and the same through SIGTERM of a real
// `relaygate gateway` process, where a second SIGTERM stops at once.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { spawnGateway, startTestGateway, testToken } from '../helpers/gateway.js';
import { nodeInFlight } from '../helpers/compute.js';
import { spawnReferenceNode, waitUntil, type NodeProcess } from '../helpers/nodes.js';
import { TestClient, upgradeRefusal } from '../helpers/ws-client.js';

let node: NodeProcess;
let token: string;
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const nodeEnv = () => ({ RELAYGATE_NODES: node.url, RELAYGATE_HEALTH_INTERVAL: '200ms', RELAYGATE_SLOW_START: '0' });

beforeAll(async () => {
  node = await spawnReferenceNode();
  token = await testToken();
});
afterAll(() => node?.stop());

async function ready(httpUrl: string): Promise<void> {
  await waitUntil(async () => (await fetch(`${httpUrl}/readyz`)).status === 200, 20_000, 'gateway ready');
}

describe('in-process drain', () => {
  it('GoAway, readyz 503, no new connections, in-flight work finishes, then 1001 for every client', async () => {
    const gw = await startTestGateway({ ...nodeEnv(), RELAYGATE_DRAIN_GRACE: '10s', RELAYGATE_CLOSE_SPREAD: '200ms' });
    await ready(gw.httpUrl);
    const agent = new Agent({ keepAliveTimeout: 30_000, connections: 1 });
    expect((await request(`${gw.httpUrl}/healthz`, { dispatcher: agent })).statusCode).toBe(200);
    const busy = await TestClient.connect(gw.wsUrl, { token });
    const idle = await TestClient.connect(gw.wsUrl, { token, subprotocol: 'json' });
    busy.send({ id: 1, invoke: { function: 'sleep', payload: b64('1000') } });
    await waitUntil(async () => (await nodeInFlight(node)) >= 1, 10_000, 'node busy');

    const drained = gw.gateway.drain();
    for (const client of [busy, idle]) {
      const goAway = await client.next((f) => f.kind === 'goAway');
      expect(goAway.id).toBe(0);
      expect(Number(goAway.body.reconnectWithinMs)).toBe(10_200);
    }
    const readyz = await request(`${gw.httpUrl}/readyz`, { dispatcher: agent });
    expect(readyz.statusCode).toBe(503);
    expect(await readyz.body.json()).toMatchObject({ ready: false, draining: true });
    await expect(upgradeRefusal(gw.wsUrl, { token })).rejects.toThrow(/ECONNREFUSED/);
    const refused = await busy.request({ id: 2, invoke: { function: 'echo', payload: b64('late') } });
    expect(refused.body.code).toBe(Code.UNAVAILABLE);
    await busy.ping(3); // the connection still serves while draining

    const result = await busy.reply(1);
    expect(result.kind).toBe('result');
    expect((await busy.closed).code).toBe(1001);
    expect((await idle.closed).code).toBe(1001);
    await drained;
    await agent.close();
  });

  it('work still running when the grace ends gets UNAVAILABLE, and the node request is aborted', async () => {
    const gw = await startTestGateway({ ...nodeEnv(), RELAYGATE_DRAIN_GRACE: '300ms', RELAYGATE_CLOSE_SPREAD: '0' });
    await ready(gw.httpUrl);
    const client = await TestClient.connect(gw.wsUrl, { token });
    client.send({ id: 7, invoke: { function: 'sleep', payload: b64('20000') } });
    await waitUntil(async () => (await nodeInFlight(node)) >= 1, 10_000, 'node busy');
    await gw.gateway.drain();
    const answer = await client.reply(7);
    expect(answer.kind).toBe('error');
    expect(answer.body.code).toBe(Code.UNAVAILABLE);
    expect((await client.closed).code).toBe(1001);
    await waitUntil(async () => (await nodeInFlight(node)) === 0, 10_000, 'node request aborted');
  });
});

describe('relaygate gateway process', () => {
  it('SIGTERM drains: GoAway, the running invoke completes, 1001, exit 0', async () => {
    const gateway = await spawnGateway({ ...nodeEnv(), RELAYGATE_DRAIN_GRACE: '10s', RELAYGATE_CLOSE_SPREAD: '100ms' });
    const httpUrl = `http://127.0.0.1:${gateway.port}`;
    await ready(httpUrl);
    const client = await TestClient.connect(`ws://127.0.0.1:${gateway.port}/v1/ws`, { token });
    client.send({ id: 1, invoke: { function: 'sleep', payload: b64('800') } });
    await waitUntil(async () => (await nodeInFlight(node)) >= 1, 10_000, 'node busy');
    gateway.kill('SIGTERM');
    expect((await client.next((f) => f.kind === 'goAway')).id).toBe(0);
    expect((await client.reply(1)).kind).toBe('result');
    expect((await client.closed).code).toBe(1001);
    expect(await gateway.exited).toBe(0);
    expect(gateway.logs.some((l) => l.msg === 'connection closed' && l.code === 1001)).toBe(true);
    // Never a token or a query string in the logs.
    expect(JSON.stringify(gateway.logs)).not.toContain(token);
  });

  it('a second SIGTERM stops at once', async () => {
    const gateway = await spawnGateway({ ...nodeEnv(), RELAYGATE_DRAIN_GRACE: '60s' });
    await ready(`http://127.0.0.1:${gateway.port}`);
    const client = await TestClient.connect(`ws://127.0.0.1:${gateway.port}/v1/ws`, { token, tokenInQuery: true });
    client.send({ id: 1, invoke: { function: 'sleep', payload: b64('30000') } });
    await waitUntil(async () => (await nodeInFlight(node)) >= 1, 10_000, 'node busy');
    gateway.kill('SIGTERM');
    await client.next((f) => f.kind === 'goAway');
    const before = Date.now();
    gateway.kill('SIGTERM');
    const code = await gateway.exited;
    expect(code).not.toBe(0);
    expect(Date.now() - before).toBeLessThan(10_000);
    expect(JSON.stringify(gateway.logs)).not.toContain(token);
    await waitUntil(async () => (await nodeInFlight(node)) === 0, 15_000, 'node request ended with the gateway');
  });
});
