// Remote compute end to end: a real `relaygate gateway` process forwarding to real node processes,
// over WebSocket (RelaygateClient) and the HTTP bridge POST /v1/invoke/<function> (plain fetch).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelaygateClient, RelaygateError } from '../../src/client/client.js';
import { Code } from '../../src/errors.js';
import { spawnGateway, testToken, type GatewayProcess } from '../helpers/gateway.js';
import { spawnPlainNode, spawnReferenceNode, waitUntil, type LogEntry, type NodeProcess } from '../helpers/nodes.js';
import { nodeInFlight } from '../helpers/compute.js';

describe('compute through a gateway process', () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let plain: NodeProcess;
  let gateway: GatewayProcess;
  let base: string;
  let token: string;
  let client: RelaygateClient;

  beforeAll(async () => {
    [a, b, plain] = await Promise.all([
      spawnReferenceNode({ RELAYGATE_NODE_ID: 'gw-a' }),
      spawnReferenceNode({ RELAYGATE_NODE_ID: 'gw-b' }),
      spawnPlainNode({ id: 'gw-plain' }),
    ]);
    gateway = await spawnGateway({ RELAYGATE_NODES: `${a.url},${b.url}?weight=2,${plain.url}`, RELAYGATE_HEALTH_INTERVAL: '250ms' });
    base = `http://127.0.0.1:${gateway.port}`;
    token = await testToken({ scope: 'invoke:*' });
    client = await RelaygateClient.connect(`ws://127.0.0.1:${gateway.port}/v1/ws`, { token });
  });
  afterAll(async () => {
    client?.close();
    gateway?.kill('SIGKILL');
    await gateway?.exited;
    await Promise.all([a?.kill(), b?.kill(), plain?.kill()]);
  });

  const aborted = (requestIdPrefix?: string) => (e: LogEntry): boolean =>
    e.msg === 'invocation aborted' && (requestIdPrefix === undefined || String(e.requestId).startsWith(requestIdPrefix));

  it('is ready with healthy nodes', async () => {
    await waitUntil(async () => (await fetch(`${base}/readyz`)).status === 200, 10_000, 'readyz 200');
  });

  it('invokes over WebSocket, naming the node', async () => {
    const result = await client.invoke('sha256', 'hello');
    expect(Buffer.from(result.payload).toString()).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(['gw-a', 'gw-b', 'gw-plain']).toContain(result.nodeId);
  });

  it('streams progress over WebSocket before the result', async () => {
    const fractions: number[] = [];
    // The reference nodes list their functions at /healthz, so primes never goes to the plain node.
    for (let i = 0; i < 4; i++) {
      const result = await client.invoke('primes', '2000000', { onProgress: (p) => fractions.push(p.fraction ?? 0) });
      expect(JSON.parse(Buffer.from(result.payload).toString())).toEqual({ n: 2000000, count: 148933 });
      expect(['gw-a', 'gw-b']).toContain(result.nodeId);
    }
    expect(fractions.length).toBeGreaterThan(0);
  });

  it('serves a node written without the SDK', async () => {
    // The plain node lists no functions, so it may be asked anything; `add` is only there.
    const results = await Promise.all(Array.from({ length: 4 }, () => client.invoke('add', '{"a":20,"b":22}', { contentType: 'application/json' })));
    for (const result of results) {
      expect(JSON.parse(Buffer.from(result.payload).toString()).sum).toBe(42);
      expect(result.nodeId).toBe('gw-plain');
    }
  });

  it('a WebSocket Cancel reaches the node', async () => {
    const controller = new AbortController();
    const call = client.invoke('sleep', '20000', { signal: controller.signal });
    const settled = call.then(() => undefined, (err: unknown) => err);
    await waitUntil(async () => (await nodeInFlight(a)) + (await nodeInFlight(b)) === 1, 10_000, 'sleep running');
    controller.abort();
    const err = await settled;
    expect(err).toBeInstanceOf(RelaygateError);
    expect((err as RelaygateError).code).toBe(Code.CANCELLED);
    await Promise.race([a.waitForLog(aborted()), b.waitForLog(aborted())]);
    await waitUntil(async () => (await nodeInFlight(a)) + (await nodeInFlight(b)) === 0, 10_000, 'node work ended');
  });

  it('HTTP bridge: POST /v1/invoke/<fn> returns the result bytes and the node id', async () => {
    const res = await fetch(`${base}/v1/invoke/echo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-test' },
      body: Buffer.from([0, 1, 2, 250, 255]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-test');
    expect(['gw-a', 'gw-b']).toContain(res.headers.get('x-relaygate-node-id'));
    expect([...Buffer.from(await res.arrayBuffer())]).toEqual([0, 1, 2, 250, 255]);
  });

  it('HTTP bridge: node errors come back as JSON with the spec\'s status', async () => {
    const res = await fetch(`${base}/v1/invoke/sort`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'not json' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 'INVALID_ARGUMENT', message: 'payload is not JSON' });
    const unauthorized = await fetch(`${base}/v1/invoke/sha256`, { method: 'POST', body: 'x' });
    expect(unauthorized.status).toBe(401);
  });

  it('HTTP bridge: the deadline reaches the node (504, node aborts)', async () => {
    const res = await fetch(`${base}/v1/invoke/sleep`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-relaygate-timeout-ms': '300' }, body: '20000' });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('DEADLINE_EXCEEDED');
    await Promise.race([a.waitForLog((e) => aborted()(e) && e.reason === 'caller went away'), b.waitForLog((e) => aborted()(e) && e.reason === 'caller went away')]);
  });

  it('HTTP bridge: a caller that disconnects aborts the node\'s work', async () => {
    const before = a.logs.filter(aborted()).length + b.logs.filter(aborted()).length;
    const controller = new AbortController();
    const pending = fetch(`${base}/v1/invoke/sleep`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '20000', signal: controller.signal })
      .then((r) => r.status, () => 'aborted');
    await waitUntil(async () => (await nodeInFlight(a)) + (await nodeInFlight(b)) === 1, 10_000, 'sleep running');
    controller.abort();
    expect(await pending).toBe('aborted');
    await waitUntil(() => a.logs.filter(aborted()).length + b.logs.filter(aborted()).length > before, 10_000, 'node saw the abort');
    await waitUntil(async () => (await nodeInFlight(a)) + (await nodeInFlight(b)) === 0, 10_000, 'node work ended');
  });

  it('exposes per-node metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const node of [a, b, plain]) {
      expect(text).toContain(`relaygate_node_in_flight{node="${node.url}"}`);
      expect(text).toContain(`relaygate_node_up{node="${node.url}"} 1`);
    }
    expect(text).toMatch(/relaygate_node_requests_total\{node="[^"]+"\} [1-9]/);
    expect(text).toMatch(/relaygate_node_latency_seconds_bucket\{le="[^"]+",node="[^"]+"\}/);
    expect(text).toMatch(/relaygate_node_errors_total\{node="[^"]+",code="INVALID_ARGUMENT"\} [1-9]/);
    expect(text).toContain('relaygate_compute_queue_length 0');
  });
});

describe('queue overflow through a gateway process', () => {
  let node: NodeProcess;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    node = await spawnReferenceNode({ RELAYGATE_NODE_ID: 'busy' });
    gateway = await spawnGateway({ RELAYGATE_NODES: node.url, RELAYGATE_NODE_MAX_IN_FLIGHT: '1', RELAYGATE_QUEUE_SIZE: '1' });
  });
  afterAll(async () => {
    gateway?.kill('SIGKILL');
    await gateway?.exited;
    await node?.kill();
  });

  it('answers 429 RESOURCE_EXHAUSTED with Retry-After once the node and the queue are full', async () => {
    const token = await testToken({ scope: 'invoke:*' });
    const call = () => fetch(`http://127.0.0.1:${gateway.port}/v1/invoke/sleep`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '600' });
    const first = call();
    await waitUntil(async () => (await nodeInFlight(node)) === 1, 10_000, 'first call running');
    // One of the next two waits in the queue, the other finds it full.
    const [second, third] = await Promise.all([call(), call()]);
    const refused = second.status === 429 ? second : third;
    const queued = refused === second ? third : second;
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as { code: string }).code).toBe('RESOURCE_EXHAUSTED');
    expect(queued.status).toBe(200);
    expect(await queued.text()).toBe('slept 600');
    expect((await first).status).toBe(200);
  });
});
