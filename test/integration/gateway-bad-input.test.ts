// Hostile and broken frames against a real gateway: each gets a defined Error (id echoed when
// readable) and loses nothing; the gateway stays up and still answers Ping. Includes a fast-check
// property feeding thousands of arbitrary frames.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { TestClient, type Received } from '../helpers/ws-client.js';

let gw: TestGateway;
let token: string;

beforeAll(async () => {
  gw = await startTestGateway({
    RELAYGATE_VIOLATION_LIMIT: '1000000',
    RELAYGATE_RATE_LIMIT: '1000000',
    RELAYGATE_RATE_BURST: '1000000',
    RELAYGATE_MAX_FRAME_BYTES: '4096',
  });
  token = await testToken({ scope: 'invoke:* subscribe:** publish:**' });
});
afterAll(() => gw?.close());

async function expectError(client: TestClient, id: number, code: number = Code.INVALID_ARGUMENT): Promise<Received> {
  const frame = await client.next((f) => f.kind !== 'event');
  expect(frame.kind, JSON.stringify(frame)).toBe('error');
  expect(frame.id).toBe(id);
  expect(frame.body.code).toBe(code);
  return frame;
}

describe('binary frames (relaygate.v1.proto)', () => {
  const cases: [string, number[], number][] = [
    ['a truncated varint id', [0x08, 0xff], 0],
    ['a truncated varint after a good id', [0x08, 0x03, 0x3a, 0x08, 0xff, 0xff], 3],
    ['a huge length prefix', [0x08, 0x04, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f], 4],
    ['a length prefix past the end', [0x08, 0x05, 0x32, 0x7f, 0x0a, 0x01], 5],
    ['an unknown field only (no body)', [0x08, 0x06, 0xf8, 0x07, 0x01], 6],
    ['a body field with the wrong wire type', [0x08, 0x07, 0x3d, 0x00, 0x00, 0x00, 0x00], 7],
    ['an invalid wire type', [0x08, 0x08, 0x0f], 8],
    ['invalid UTF-8 in a string field', [0x08, 0x09, 0x2a, 0x04, 0x0a, 0x02, 0xc3, 0x28], 9],
  ];
  it.each(cases)('%s: INVALID_ARGUMENT, then Ping still works', async (_name, bytes, id) => {
    const client = await TestClient.connect(gw.wsUrl, { token });
    client.sendRaw(new Uint8Array(bytes));
    const frame = await client.next();
    // A few damaged frames still decode into a request the router then refuses on its merits.
    expect(frame.kind).toBe('error');
    if (frame.body.code === Code.INVALID_ARGUMENT) expect([id, 0]).toContain(frame.id);
    await client.ping(100);
    client.close();
  });

  // uWebSockets.js sometimes drops a connection that sends a zero-length message (its parser,
  // uNetworking/uWebSockets#1013), without calling the message handler. Either way the gateway must
  // answer or close, and stay up.
  it.each([['proto', new Uint8Array(0)], ['json', '']] as const)('an empty %s message: INVALID_ARGUMENT or a close; the gateway stays up', async (subprotocol, empty) => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    client.sendRaw(empty, subprotocol === 'proto');
    const outcome = await Promise.race([client.next().then((f) => f.body.code), client.closed.then((c) => `closed ${c.code}`)]);
    expect([Code.INVALID_ARGUMENT, 'closed 1006']).toContain(outcome);
    const fresh = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    await fresh.ping(1);
    fresh.close();
    client.close();
  });

  it('a text message on the binary subprotocol is INVALID_ARGUMENT', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token });
    client.sendRaw('{"id":1,"ping":{}}', false);
    await expectError(client, 0);
    await client.ping(2);
    client.close();
  });
});

describe('text frames (relaygate.v1.json)', () => {
  const cases: [string, string, number][] = [
    ['__proto__ as a body', '{"id":1,"__proto__":{"ping":{}}}', 1],
    ['__proto__ inside a body', '{"id":2,"ping":{"__proto__":{"polluted":true}}}', 2],
    ['constructor.prototype inside a body', '{"id":3,"subscribe":{"topic":"a","constructor":{"prototype":{"polluted":true}}}}', 3],
    ['an unknown oneof member', '{"id":4,"teleport":{}}', 4],
    ['two oneof members', '{"id":5,"ping":{},"refresh":{"token":"x"}}', 5],
    ['a string id', '{"id":"abc","ping":{}}', 0],
    ['a negative id', '{"id":-1,"ping":{}}', 0],
    ['an id beyond uint32', '{"id":4294967296,"ping":{}}', 0],
    ['a fractional id', '{"id":1.5,"ping":{}}', 0],
    ['a boolean where an int64 belongs', '{"id":6,"ping":{"clientTimeMs":true}}', 6],
    ['a number where a string belongs', '{"id":7,"subscribe":{"topic":5}}', 7],
    ['a string where a message belongs', '{"id":8,"invoke":"sha256"}', 8],
    ['bytes that are not base64', '{"id":9,"publish":{"topic":"a","payload":"***"}}', 9],
    ['a metadata value that is not a string', '{"id":10,"invoke":{"function":"f","metadata":{"k":1}}}', 10],
    ['an array', '[1,2,3]', 0],
    ['null', 'null', 0],
    ['a bare string', '"ping"', 0],
    ['truncated JSON', '{"id":11,"ping":{', 0],
    ['a body without id', '{"ping":{}}', 0],
    ['an empty object', '{}', 0],
    ['deeply nested arrays', `${'['.repeat(2000)}${']'.repeat(2000)}`, 0],
    ['a deeply nested body', `{"id":12,"ping":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`, 12],
  ];
  it.each(cases)('%s: INVALID_ARGUMENT, then Ping still works', async (_name, text, id) => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol: 'json' });
    client.sendRaw(text, false);
    await expectError(client, id);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    await client.ping(100);
    client.close();
  });

  // uWS validates text messages itself and drops a connection that sends invalid UTF-8 (1006).
  it('text that is not UTF-8: the connection is dropped; the gateway stays up', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol: 'json' });
    client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const outcome = await Promise.race([client.next().then((f) => f.body.code), client.closed.then((c) => `closed ${c.code}`)]);
    expect(outcome).toBe('closed 1006');
    const fresh = await TestClient.connect(gw.wsUrl, { token, subprotocol: 'json' });
    await fresh.ping(1);
    fresh.close();
    client.close();
  });

  it('names that break the rules: INVALID_ARGUMENT, unknown functions are refused as not granted', async () => {
    const narrow = await testToken({ scope: 'invoke:sha256 subscribe:resources/** publish:chat/*' });
    const client = await TestClient.connect(gw.wsUrl, { token: narrow, subprotocol: 'json' });
    const answers: [Record<string, unknown>, number][] = [
      [{ id: 1, subscribe: { topic: 'resources/../secrets' } }, Code.INVALID_ARGUMENT],
      [{ id: 2, subscribe: { topic: 'resources//x' } }, Code.INVALID_ARGUMENT],
      [{ id: 3, subscribe: { topic: 'resources/*' } }, Code.INVALID_ARGUMENT],
      [{ id: 4, subscribe: { topic: 'resources/аpple' } }, Code.INVALID_ARGUMENT],
      [{ id: 5, subscribe: { topic: 'other/x' } }, Code.PERMISSION_DENIED],
      [{ id: 6, publish: { topic: 'chat/a/b', payload: '' } }, Code.PERMISSION_DENIED],
      [{ id: 7, invoke: { function: 'rm -rf' } }, Code.INVALID_ARGUMENT],
      [{ id: 8, invoke: { function: 'md5' } }, Code.PERMISSION_DENIED],
      [{ id: 9, invoke: { function: 'sha256', metadata: { 'bad key': 'v' } } }, Code.INVALID_ARGUMENT],
      [{ id: 10, invoke: { function: 'sha256', metadata: { k: 'line\r\nX-Injected: 1' } } }, Code.INVALID_ARGUMENT],
      [{ id: 11, invoke: { function: 'sha256', jobTopic: 'resources/jobs/1' } }, Code.PERMISSION_DENIED],
      [{ id: 12, invoke: { function: 'sha256', jobTopic: 'chat/..' } }, Code.INVALID_ARGUMENT],
      [{ id: 13, unsubscribe: { topic: '' } }, Code.INVALID_ARGUMENT],
      [{ id: 14, cancel: {} }, Code.INVALID_ARGUMENT],
    ];
    for (const [frame, code] of answers) {
      const answer = await client.request(frame as Record<string, unknown> & { id: number });
      expect(answer.kind, JSON.stringify(frame)).toBe('error');
      expect(answer.body.code, JSON.stringify(frame)).toBe(code);
    }
    await client.ping(100);
    client.close();
  });
});

describe('arbitrary frames (property)', () => {
  const MARK = 0xfffffff0;

  /** Sends `frames`, then a marker Ping; resolves with the non-event frames answering them. */
  async function exchange(client: TestClient, frames: (Uint8Array | string)[], binary: boolean, seq: number): Promise<Received[]> {
    for (const f of frames) client.sendRaw(f, binary);
    const markId = MARK - (seq % 8);
    client.send({ id: markId, ping: {} });
    await client.next((f) => f.id === markId && f.kind === 'pong', 20_000);
    // Answers to Refresh-shaped frames come after verification and may trail the marker.
    const answers: Received[] = [];
    const deadline = Date.now() + 20_000;
    while (answers.length < frames.length && Date.now() < deadline) {
      answers.push(await client.next((f) => f.kind !== 'event', Math.max(1, deadline - Date.now())));
    }
    return answers;
  }

  const answerKinds = ['error', 'ack', 'pong', 'result'];
  // Zero-length messages are left out here: see the empty-message case above.

  it.each([
    ['proto', fc.uint8Array({ minLength: 1, maxLength: 200 }), true],
    ['json', fc.oneof(
      fc.json({ maxDepth: 3 }),
      fc.string({ minLength: 1, maxLength: 120 }),
      fc.record({ id: fc.oneof(fc.nat(), fc.integer(), fc.string()), ping: fc.anything({ maxDepth: 2 }) }).map((v) => JSON.stringify(v)),
      fc.record({ id: fc.nat({ max: 1000 }), invoke: fc.dictionary(fc.constantFrom('function', 'payload', 'timeoutMs', 'metadata', 'jobTopic', '__proto__'), fc.jsonValue({ maxDepth: 2 })) }).map((v) => JSON.stringify(v)),
    ), false],
  ] as const)('%s: every arbitrary frame gets exactly one defined answer, and Ping works afterwards', async (subprotocol, arbitrary, binary) => {
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    let seq = 0;
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(arbitrary as fc.Arbitrary<Uint8Array | string>, { minLength: 10, maxLength: 60 }), async (frames) => {
        sent += frames.length;
        const answers = await exchange(client, frames, binary, seq++);
        expect(answers.length).toBe(frames.length);
        for (const a of answers) {
          expect(answerKinds).toContain(a.kind);
          if (a.kind === 'error') expect(Object.values(Code)).toContain(a.body.code);
        }
      }),
      { numRuns: 150 },
    );
    expect(sent).toBeGreaterThan(1500);
    await client.ping(1);
    // Nothing was answered twice: no stray answers trail the last exchange.
    await client.ping(2);
    expect(client.received.filter((f) => f.kind !== 'event')).toEqual([]);
    client.close();
    const fresh = await TestClient.connect(gw.wsUrl, { token, subprotocol });
    await fresh.ping(3);
    fresh.close();
  });
});
