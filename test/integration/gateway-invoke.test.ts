// Invoke through a real gateway to a real reference node process: results, exactly one terminal
// answer under cancel, duplicates, limits and deadlines; job topics; the HTTP invoke and publish
// routes sharing the WebSocket path's checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { decodeNodeFrame } from '../../src/protocol/codec.js';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { nodeInFlight } from '../helpers/compute.js';
import { spawnReferenceNode, waitUntil, type NodeProcess } from '../helpers/nodes.js';
import { TestClient, type Received } from '../helpers/ws-client.js';

let node: NodeProcess;
let gw: TestGateway;
let token: string;

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const textOf = (f: Received): string => {
  const p = f.body.payload;
  return typeof p === 'string' ? Buffer.from(p, 'base64').toString() : Buffer.from((p as Uint8Array) ?? []).toString();
};

beforeAll(async () => {
  node = await spawnReferenceNode();
  gw = await startTestGateway({ RELAYGATE_NODES: node.url, RELAYGATE_MAX_IN_FLIGHT: '3', RELAYGATE_HEALTH_INTERVAL: '200ms', RELAYGATE_SLOW_START: '0' });
  token = await testToken({ scope: 'invoke:* subscribe:jobs/** publish:jobs/** publish:news/*' });
  await waitUntil(async () => (await fetch(`${gw.httpUrl}/readyz`)).status === 200, 20_000, 'gateway ready');
});
afterAll(async () => {
  await gw?.close();
  await node?.stop();
});

describe.each(['proto', 'json'] as const)('WebSocket invoke with %s', (subprotocol) => {
  it('answers with the node result, its content type and node id', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    const result = await client.request({ id: 1, invoke: { function: 'echo', payload: b64('hello'), contentType: 'text/plain' } });
    expect(result.kind).toBe('result');
    expect(textOf(result)).toBe('hello');
    expect(result.body.contentType).toBe('text/plain');
    expect(String(result.body.nodeId)).not.toBe('');
    client.close();
  });

  it('streams Progress before the one Result, none after it', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    const result = await client.request({ id: 2, invoke: { function: 'primes', payload: b64('2000000') } }).then(async (first) => {
      const frames = [first];
      while (frames[frames.length - 1]!.kind === 'progress') frames.push(await client.reply(2));
      return frames;
    });
    const kinds = result.map((f) => f.kind);
    expect(kinds[kinds.length - 1]).toBe('result');
    expect(kinds.filter((k) => k === 'progress').length).toBeGreaterThan(1);
    const fractions = result.filter((f) => f.kind === 'progress').map((f) => Number(f.body.fraction));
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(JSON.parse(textOf(result[result.length - 1]!))).toEqual({ n: 2000000, count: 148933 });
    await client.ping(3);
    expect(client.received.filter((f) => f.id === 2)).toEqual([]);
    client.close();
  });

  it('Cancel: Ack to the cancel, CANCELLED for the invoke, exactly once, and the node stops working', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    client.send({ id: 10, invoke: { function: 'sleep', payload: b64('20000') } });
    await waitUntil(async () => (await nodeInFlight(node)) >= 1, 10_000, 'node busy');
    const ack = await client.request({ id: 11, cancel: { targetId: 10 } });
    expect(ack.kind).toBe('ack');
    const ended = await client.reply(10);
    expect(ended.kind).toBe('error');
    expect(ended.body.code).toBe(Code.CANCELLED);
    await waitUntil(async () => (await nodeInFlight(node)) === 0, 10_000, 'node request aborted');
    await client.ping(12);
    expect(client.received.filter((f) => f.id === 10)).toEqual([]);
    client.close();
  });

  it('a duplicate id while an invoke is in flight is INVALID_ARGUMENT; the original still gets its result', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    client.send({ id: 20, invoke: { function: 'sleep', payload: b64('400') } });
    const duplicate = await client.request({ id: 20, invoke: { function: 'echo', payload: b64('x') } });
    expect(duplicate.kind).toBe('error');
    expect(duplicate.body.code).toBe(Code.INVALID_ARGUMENT);
    const original = await client.reply(20);
    expect(original.kind).toBe('result');
    expect(textOf(original)).toBe('slept 400');
    client.close();
  });

  it('beyond max_in_flight: RESOURCE_EXHAUSTED with retry_after_ms; the others complete', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    for (const id of [31, 32, 33]) client.send({ id, invoke: { function: 'sleep', payload: b64('300') } });
    const fourth = await client.request({ id: 34, invoke: { function: 'echo', payload: b64('x') } });
    expect(fourth.body.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(Number(fourth.body.retryAfterMs)).toBeGreaterThan(0);
    for (const id of [31, 32, 33]) expect((await client.reply(id)).kind).toBe('result');
    client.close();
  });

  it('timeout_ms bounds the invoke: DEADLINE_EXCEEDED', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    const answer = await client.request({ id: 40, invoke: { function: 'sleep', payload: b64('5000'), timeoutMs: 300 } });
    expect(answer.kind).toBe('error');
    expect(answer.body.code).toBe(Code.DEADLINE_EXCEEDED);
    client.close();
  });
});

it('a client disconnect aborts its invokes at the node', async () => {
  const client = await TestClient.connect(gw.wsUrl, { token });
  client.send({ id: 1, invoke: { function: 'sleep', payload: b64('20000') } });
  client.send({ id: 2, invoke: { function: 'sleep', payload: b64('20000') } });
  await waitUntil(async () => (await nodeInFlight(node)) >= 2, 10_000, 'node busy');
  client.terminate();
  await waitUntil(async () => (await nodeInFlight(node)) === 0, 10_000, 'node requests aborted');
});

it('job_topic: progress and the result are also published as NodeFrame events on the topic', async () => {
  const watcher = await TestClient.connect(gw.wsUrl, { token });
  expect((await watcher.request({ id: 1, subscribe: { topic: 'jobs/42' } })).kind).toBe('ack');
  const client = await TestClient.connect(gw.wsUrl, { token });
  const result = await client.request({ id: 5, invoke: { function: 'echo', payload: b64('done'), jobTopic: 'jobs/42' } });
  expect(result.kind).toBe('result');
  const event = await watcher.next((f) => f.kind === 'event');
  expect(event.body.topic).toBe('jobs/42');
  expect(event.body.contentType).toBe('application/x-relaygate-node-frame');
  const frame = decodeNodeFrame(event.body.payload as Uint8Array);
  expect('result' in frame && Buffer.from(frame.result.payload).toString()).toBe('done');
  watcher.close();
  client.close();
});

describe('HTTP routes', () => {
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${gw.httpUrl}${path}`, { method: 'POST', body, headers });

  it('POST /v1/invoke/<fn>: result bytes, content type and node id', async () => {
    const res = await post('/v1/invoke/echo', 'hi there', { authorization: `Bearer ${token}`, 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('x-relaygate-node-id')).toBeTruthy();
    expect(await res.text()).toBe('hi there');
  });

  it('POST /v1/invoke/<fn>: 401 without or with a bad token, 403 without the grant, 400 for a bad name', async () => {
    const none = await post('/v1/invoke/echo', 'x');
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ code: 'UNAUTHENTICATED', message: 'no credential' });
    expect((await post('/v1/invoke/echo', 'x', { authorization: 'Bearer nope' })).status).toBe(401);
    const narrow = await testToken({ scope: 'invoke:sha256' });
    const denied = await post('/v1/invoke/echo', 'x', { authorization: `Bearer ${narrow}` });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await post('/v1/invoke/bad%20name', 'x', { authorization: `Bearer ${token}` })).status).toBe(400);
  });

  it('POST /v1/invoke/<fn>: node errors keep their status; the timeout header bounds the call', async () => {
    const missing = await post('/v1/invoke/no-such-function', 'x', { authorization: `Bearer ${token}` });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND' });
    const slow = await post('/v1/invoke/sleep', '5000', { authorization: `Bearer ${token}`, 'x-relaygate-timeout-ms': '300' });
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('a body over max_frame_bytes is refused with 413', async () => {
    const res = await post('/v1/invoke/echo', Buffer.alloc(1024 * 1024 + 1), { authorization: `Bearer ${token}` }).catch((err: Error) => err);
    // The gateway answers as soon as the limit is passed and closes; the client may see the 413 or the closed socket.
    if (res instanceof Error) expect(res.message).toMatch(/fetch failed|socket/i);
    else expect(res.status).toBe(413);
  });

  it('POST /v1/publish/<topic>: 200 {} and subscribers get the event; 401 and 403 otherwise', async () => {
    const watcher = await TestClient.connect(gw.wsUrl, { token: await testToken({ scope: 'subscribe:news/*' }), subprotocol: 'json' });
    expect((await watcher.request({ id: 1, subscribe: { topic: 'news/today' } })).kind).toBe('ack');
    const res = await post('/v1/publish/news/today', 'headline', { authorization: `Bearer ${token}`, 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const event = await watcher.next((f) => f.kind === 'event');
    expect(textOf(event)).toBe('headline');
    expect(event.body.contentType).toBe('text/plain');
    expect((await post('/v1/publish/news/today', 'x')).status).toBe(401);
    expect((await post('/v1/publish/other/topic', 'x', { authorization: `Bearer ${token}` })).status).toBe(403);
    expect((await post('/v1/publish/news/..', 'x', { authorization: `Bearer ${token}` })).status).toBe(400);
    watcher.close();
  });
});
