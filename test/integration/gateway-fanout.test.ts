// Local fan-out through uWS native topics with the gateway's own send-buffer limit: a subscriber that
// stops reading is closed with 4008 and never loses an event silently, while the others on the same
// topic, binary and JSON alike, get every event in order; the gateway holds a bounded amount.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { TestClient, type Received } from '../helpers/ws-client.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function metric(g: TestGateway, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${g.httpUrl}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/** The sequence numbers carried by the events a client received on `topic` (first 4 payload bytes). */
function sequence(client: TestClient, topic: string): number[] {
  return client.received
    .filter((f: Received) => f.kind === 'event' && f.body.topic === topic)
    .map((f) => {
      const payload = f.body.payload;
      const bytes = typeof payload === 'string' ? Buffer.from(payload, 'base64') : Buffer.from(payload as Uint8Array);
      return bytes.readUInt32BE(0);
    });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fan-out with a stalled subscriber', () => {
  it('closes the stalled subscriber with 4008 after a gap-free prefix, while the others get every event in order', async () => {
    const limit = 256 * 1024;
    gw = await startTestGateway({ RELAYGATE_MAX_BACKPRESSURE: '256kb', RELAYGATE_MAX_FRAME_BYTES: '1mb', RELAYGATE_RATE_LIMIT: '100000', RELAYGATE_RATE_BURST: '100000' });
    const token = await testToken();
    const stalled = await TestClient.connect(gw.wsUrl, { token });
    const healthy = await TestClient.connect(gw.wsUrl, { token });
    const healthyJson = await TestClient.connect(gw.wsUrl, { token, subprotocol: 'json' });
    for (const c of [stalled, healthy, healthyJson]) expect((await c.request({ id: 1, subscribe: { topic: 'feed/seq' } })).kind).toBe('ack');
    const socket = (stalled.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();

    const publisher = await TestClient.connect(gw.wsUrl, { token });
    const total = 300;
    const window = 10;
    const size = 64 * 1024; // 300 × 64 KiB ≈ 19 MB: far past the kernel's socket buffers and the limit
    let largest = 0;
    for (let sent = 0; sent < total; sent += window) {
      for (let i = sent; i < sent + window; i++) {
        const payload = Buffer.alloc(size, 0x5a);
        payload.writeUInt32BE(i, 0);
        publisher.send({ id: 1000 + i, publish: { topic: 'feed/seq', payload: payload.toString('base64') } });
      }
      // Paced as a live feed the healthy readers keep up with.
      await until(`events up to ${sent + window}`, () => sequence(healthy, 'feed/seq').length >= sent + window && sequence(healthyJson, 'feed/seq').length >= sent + window);
      largest = Math.max(largest, await metric(gw, /^relaygate_send_buffer_bytes\{stat="max"\} (\d+)/m));
    }

    const expected = Array.from({ length: total }, (_, i) => i);
    expect(sequence(healthy, 'feed/seq')).toEqual(expected);
    expect(sequence(healthyJson, 'feed/seq')).toEqual(expected);
    expect(healthy.ws.readyState).toBe(1);
    expect(healthyJson.ws.readyState).toBe(1);
    // The gateway gave up on the stalled reader by itself, while it still read nothing.
    expect(await metric(gw, /^relaygate_closes_total\{code="4008"\} (\d+)/m)).toBe(1);
    // Bounded: never more than the limit plus about one turn's events (one publish window here).
    expect(largest).toBeLessThanOrEqual(limit + window * (size + 1024));

    socket.resume();
    const closed = await stalled.closed;
    expect(closed.code).toBe(4008);
    // What it got before the close is the start of the stream, without a gap.
    const got = sequence(stalled, 'feed/seq');
    expect(got.length).toBeLessThan(total);
    expect(got).toEqual(expected.slice(0, got.length));
    for (const c of [healthy, healthyJson, publisher]) c.close();
  });

  it('a subscriber that reads again before the limit keeps its subscription and every event', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_BACKPRESSURE: '8mb', RELAYGATE_RATE_LIMIT: '100000', RELAYGATE_RATE_BURST: '100000' });
    const token = await testToken();
    const paused = await TestClient.connect(gw.wsUrl, { token });
    expect((await paused.request({ id: 1, subscribe: { topic: 'feed/short' } })).kind).toBe('ack');
    const socket = (paused.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    const publisher = await TestClient.connect(gw.wsUrl, { token });
    const total = 200;
    for (let i = 0; i < total; i++) {
      const payload = Buffer.alloc(4096, 1);
      payload.writeUInt32BE(i, 0);
      publisher.send({ id: 1 + i, publish: { topic: 'feed/short', payload: payload.toString('base64') } });
    }
    await until('publishes acknowledged', () => publisher.received.filter((f) => f.kind === 'ack').length === total);
    socket.resume();
    await until('every event', () => sequence(paused, 'feed/short').length === total);
    expect(sequence(paused, 'feed/short')).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(paused.ws.readyState).toBe(1);
    paused.close();
    publisher.close();
  });
});
