// The per-connection subscription limit over a real gateway: counted per topic, freed by
// Unsubscribe, and a refused Subscribe leaves the others delivering.
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { TestClient } from '../helpers/ws-client.js';

let gw: TestGateway | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await gw?.close();
  gw = undefined;
});

async function connect(gateway: TestGateway): Promise<TestClient> {
  const c = await TestClient.connect(gateway.wsUrl, { token: await testToken({ scope: 'subscribe:rooms/* publish:rooms/*' }) });
  clients.push(c);
  return c;
}

describe('RELAYGATE_MAX_SUBSCRIPTIONS', () => {
  it('refuses a subscription beyond the limit with RESOURCE_EXHAUSTED until one is given up', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_SUBSCRIPTIONS: '3' });
    const c = await connect(gw);
    for (const [id, topic] of [[1, 'rooms/a'], [2, 'rooms/b'], [3, 'rooms/c']] as const) {
      expect((await c.request({ id, subscribe: { topic } })).kind).toBe('ack');
    }
    // The same topic again is no new subscription.
    expect((await c.request({ id: 4, subscribe: { topic: 'rooms/b' } })).kind).toBe('ack');

    const refused = await c.request({ id: 5, subscribe: { topic: 'rooms/d' } });
    expect(refused.kind).toBe('error');
    expect(refused.body.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(Number(refused.body.retryAfterMs)).toBeGreaterThan(0);

    // Permission is checked first; a refused or denied subscribe costs no slot; an unsubscribe frees one.
    expect((await c.request({ id: 6, subscribe: { topic: 'forbidden/x' } })).body.code).toBe(Code.PERMISSION_DENIED);
    expect((await c.request({ id: 7, unsubscribe: { topic: 'rooms/a' } })).kind).toBe('ack');
    expect((await c.request({ id: 8, subscribe: { topic: 'forbidden/x' } })).body.code).toBe(Code.PERMISSION_DENIED);
    expect((await c.request({ id: 9, subscribe: { topic: 'rooms/d' } })).kind).toBe('ack');

    // The connection stays open and its subscriptions deliver.
    const publisher = await connect(gw);
    expect((await publisher.request({ id: 1, publish: { topic: 'rooms/d', payload: Buffer.from('hi').toString('base64') } })).kind).toBe('ack');
    const event = await c.next((f) => f.kind === 'event');
    expect(event.body.topic).toBe('rooms/d');
    expect((await c.request({ id: 10, subscribe: { topic: 'rooms/e' } })).body.code).toBe(Code.RESOURCE_EXHAUSTED);
  });

  it('the limit is per connection', async () => {
    gw = await startTestGateway({ RELAYGATE_MAX_SUBSCRIPTIONS: '1' });
    const a = await connect(gw);
    const b = await connect(gw);
    expect((await a.request({ id: 1, subscribe: { topic: 'rooms/a' } })).kind).toBe('ack');
    expect((await b.request({ id: 1, subscribe: { topic: 'rooms/a' } })).kind).toBe('ack');
    expect((await a.request({ id: 2, subscribe: { topic: 'rooms/b' } })).body.code).toBe(Code.RESOURCE_EXHAUSTED);
  });
});
