// Per-connection limits and lifecycle over real sockets: rate limit (4029), protocol violations
// (4400), max frame size (1009), slow consumers (4008), credential expiry (4001) and Refresh,
// duplicate ids and the in-flight limit.
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { Code } from '../../src/errors.js';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { TestClient } from '../helpers/ws-client.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

/** Sends several frames in one TCP write, so the gateway reads them in one go. */
function sendTogether(client: TestClient, frames: Record<string, unknown>[]): void {
  const socket = (client.ws as WebSocket & { _socket: import('node:net').Socket })._socket;
  socket.cork();
  for (const frame of frames) client.send(frame);
  process.nextTick(() => socket.uncork());
}

async function metric(gateway: TestGateway, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${gateway.httpUrl}/metrics`)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

describe.each(['proto', 'json'] as const)('limits with %s', (subprotocol) => {
  it('rate limit: RESOURCE_EXHAUSTED with retry_after_ms, then close 4029 after repeated strikes', async () => {
    gw = await startTestGateway({ RELAYGATE_RATE_LIMIT: '0.01', RELAYGATE_RATE_BURST: '5', RELAYGATE_RATE_STRIKES: '3' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), subprotocol });
    for (let id = 1; id <= 5; id++) await client.ping(id);
    const limited = await client.request({ id: 6, ping: {} });
    expect(limited.kind).toBe('error');
    expect(limited.body.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(Number(limited.body.retryAfterMs)).toBeGreaterThan(1000);
    client.send({ id: 7, ping: {} });
    client.send({ id: 8, ping: {} });
    const closed = await client.closed;
    expect(closed.code).toBe(4029);
    expect(client.received.filter((f) => f.kind === 'error').map((f) => f.id)).toEqual([7, 8]);
  });

  it('protocol violations: INVALID_ARGUMENT each, close 4400 when they repeat', async () => {
    gw = await startTestGateway({ RELAYGATE_VIOLATION_LIMIT: '3' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), subprotocol });
    const garbage = subprotocol === 'proto' ? new Uint8Array([0x08, 0x05, 0x12, 0xff]) : '{"id":5,"invoke":';
    client.sendRaw(garbage);
    const first = await client.next();
    expect(first.kind).toBe('error');
    expect(first.body.code).toBe(Code.INVALID_ARGUMENT);
    expect(first.id).toBe(subprotocol === 'proto' ? 5 : 0);
    client.send({ id: 9 }); // no body
    expect((await client.reply(9)).body.code).toBe(Code.INVALID_ARGUMENT);
    await client.ping(10); // a valid frame in between is answered normally
    client.send({ ping: {} }); // id 0 on a request
    expect((await client.reply(0)).body.code).toBe(Code.INVALID_ARGUMENT);
    expect((await client.closed).code).toBe(4400);
  });

  it('a frame larger than max_frame_bytes closes with 1009; one at the limit is read', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_FRAME_BYTES: '1024' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), subprotocol });
    expect(Number(client.welcome.body.maxFrameBytes)).toBe(1024);
    client.sendRaw(subprotocol === 'proto' ? new Uint8Array(1024).fill(0x0a) : 'x'.repeat(1024));
    expect((await client.next()).body.code).toBe(Code.INVALID_ARGUMENT);
    client.sendRaw(subprotocol === 'proto' ? new Uint8Array(1025) : 'x'.repeat(1025));
    expect((await client.closed).code).toBe(1009);
    expect(await metric(gw, /^relaygate_closes_total\{code="1009"\} (\d+)/m)).toBe(1);
  });

  it('duplicate id of a request in flight: INVALID_ARGUMENT; the original keeps its own answer', async () => {
    gw = await startTestGateway();
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), subprotocol });
    const token = await testToken({ ttlMs: 7_200_000 });
    sendTogether(client, [{ id: 4, refresh: { token } }, { id: 4, refresh: { token } }]);
    const answers = [await client.reply(4), await client.reply(4)];
    expect(answers.map((a) => a.kind).sort()).toEqual(['ack', 'error']);
    expect(answers.find((a) => a.kind === 'error')!.body.code).toBe(Code.INVALID_ARGUMENT);
    await client.ping(5);
    expect(client.received.filter((f) => f.id === 4)).toEqual([]);
  });

  it('max in flight: RESOURCE_EXHAUSTED with retry_after_ms beyond it', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_IN_FLIGHT: '2' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), subprotocol });
    expect(Number(client.welcome.body.maxInFlight)).toBe(2);
    const token = await testToken();
    sendTogether(client, [1, 2, 3].map((id) => ({ id, refresh: { token } })));
    const third = await client.reply(3);
    expect(third.kind).toBe('error');
    expect(third.body.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(Number(third.body.retryAfterMs)).toBeGreaterThan(0);
    expect((await client.reply(1)).kind).toBe('ack');
    expect((await client.reply(2)).kind).toBe('ack');
  });
});

describe('credential expiry and Refresh', () => {
  it('closes with 4001 when the credential expires unrefreshed', async () => {
    gw = await startTestGateway({ RELAYGATE_JWT_CLOCK_TOLERANCE: '0' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken({ ttlMs: 2000 }) });
    expect(Number(client.welcome.body.tokenExpiresMs)).toBeLessThanOrEqual(Date.now() + 2000);
    const closed = await client.closed;
    expect(closed.code).toBe(4001);
    expect(closed.reason).toBe('credential expired');
  });

  it('Refresh with a new token for the same subject moves the expiry; the connection outlives the old one', async () => {
    gw = await startTestGateway({ RELAYGATE_JWT_CLOCK_TOLERANCE: '0' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken({ ttlMs: 2000 }), subprotocol: 'json' });
    const oldExpiry = Number(client.welcome.body.tokenExpiresMs);
    expect((await client.request({ id: 1, refresh: { token: await testToken({ ttlMs: 3_600_000 }) } })).kind).toBe('ack');
    while (Date.now() < oldExpiry + 1500) await new Promise((r) => setTimeout(r, 250));
    await client.ping(2);
    client.close();
  });

  it('Refresh naming another subject, or an invalid token, is UNAUTHENTICATED and the old expiry stands', async () => {
    gw = await startTestGateway({ RELAYGATE_JWT_CLOCK_TOLERANCE: '0' });
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken({ ttlMs: 3000 }) });
    const other = await client.request({ id: 1, refresh: { token: await testToken({ sub: 'mallory', ttlMs: 3_600_000 }) } });
    expect(other.kind).toBe('error');
    expect(other.body.code).toBe(Code.UNAUTHENTICATED);
    const tenant = await client.request({ id: 2, refresh: { token: await testToken({ tenant: 'acme', ttlMs: 3_600_000 }) } });
    expect(tenant.body.code).toBe(Code.UNAUTHENTICATED);
    const junk = await client.request({ id: 3, refresh: { token: 'junk' } });
    expect(junk.body.code).toBe(Code.UNAUTHENTICATED);
    expect((await client.closed).code).toBe(4001);
  });
});

describe('slow consumer', () => {
  it('a client that stops reading is closed with 4008 once its buffer passes max_backpressure', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_BACKPRESSURE: '256kb', RELAYGATE_MAX_FRAME_BYTES: '1mb', RELAYGATE_RATE_LIMIT: '100000', RELAYGATE_RATE_BURST: '100000' });
    const token = await testToken();
    const slow = await TestClient.connect(gw.wsUrl, { token });
    expect((await slow.request({ id: 1, subscribe: { topic: 'feed/big' } })).kind).toBe('ack');
    const socket = (slow.ws as WebSocket & { _socket: import('node:net').Socket })._socket;
    socket.pause();
    const publisher = await TestClient.connect(gw.wsUrl, { token });
    const payload = Buffer.alloc(256 * 1024, 7).toString('base64');
    const published = 120; // 30 MB: far more than kernel buffers and max_backpressure hold together
    let largestBuffer = 0;
    for (let id = 1; id <= published; id++) {
      expect((await publisher.request({ id, publish: { topic: 'feed/big', payload } })).kind).toBe('ack');
      largestBuffer = Math.max(largestBuffer, await metric(gw, /^relaygate_send_buffer_bytes\{stat="max"\} (\d+)/m));
      if (id % 20 === 0 && (await metric(gw, /^relaygate_closes_total\{code="4008"\} (\d+)/m)) === 1) break;
    }
    // Memory stays bounded: at most max_backpressure plus one frame was ever held for the reader.
    expect(largestBuffer).toBeGreaterThan(0);
    expect(largestBuffer).toBeLessThanOrEqual(256 * 1024 + 256 * 1024 + 1024);
    // The gateway gave up on the reader by itself, while the reader still read nothing.
    expect(await metric(gw, /^relaygate_closes_total\{code="4008"\} (\d+)/m)).toBe(1);
    expect(await metric(gw, /^relaygate_connections (\d+)/m)).toBe(1);
    socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(slow.received.filter((f) => f.kind === 'event').length).toBeLessThan(published);
    await publisher.ping(999);
  });
});
