// RelaygateClient and `relaygate call|sub|pub` against a real gateway over real TLS.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { createServer } from 'node:http';
import { connect as connectTcp, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { RelaygateClient, RelaygateError, type ConnectOptions } from '../../src/client/index.js';
import type { Event } from '../../src/client/index.js';
import { Code } from '../../src/errors.js';
import { createHash } from 'node:crypto';
import { runNode, type RunningNode } from '../../src/cli/node.js';
import { loadSettings } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startGateway } from '../../src/gateway.js';
import { runCli, startCli } from '../helpers/cli.js';
import { TEST_SECRET, selfSignedCert, startTestGateway, testToken, type TestCert, type TestGateway } from '../helpers/gateway.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function until<T>(probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = (): void => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() - started > timeoutMs) return reject(new Error('condition not met in time'));
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function rejection(p: Promise<unknown>): Promise<RelaygateError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(RelaygateError);
  return err as RelaygateError;
}

/** A TCP forwarder on a free port whose upstream port can be switched between connections. */
async function tcpProxy(target: number): Promise<{ port: number; target: number; close(): void }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, target, close: () => { server.close(); for (const s of sockets) s.destroy(); } };
  const server = createNetServer((down) => {
    const up = connectTcp(state.target, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => { down.destroy(); up.destroy(); });
      s.on('close', () => { sockets.delete(s); down.destroy(); up.destroy(); });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

let cert: TestCert;
let gw: TestGateway;
let node: RunningNode;
const clients: RelaygateClient[] = [];

async function open(options: Partial<ConnectOptions> = {}, url = gw.wsUrl): Promise<RelaygateClient> {
  const client = await RelaygateClient.connect(url, { token: await testToken(), ca: cert.cert, ...options });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  cert = selfSignedCert();
  node = await runNode(loadSettings('node', { RELAYGATE_HOST: '127.0.0.1', RELAYGATE_PORT: '0' }, []).values, silentLogger());
  gw = await startTestGateway({
    RELAYGATE_TLS_CERT: cert.certFile, RELAYGATE_TLS_KEY: cert.keyFile, RELAYGATE_HISTORY: 'hist/**=100:1h', RELAYGATE_NODES: node.url,
  });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await gw?.close();
  await node?.close();
  cert?.remove();
});

describe('RelaygateClient', () => {
  it.each(['proto', 'json'] as const)('connects over wss with the %s subprotocol and pings', async (subprotocol) => {
    const client = await open({ subprotocol });
    expect(client.subprotocol).toBe(subprotocol);
    expect(client.welcome.sessionId.length).toBeGreaterThan(0);
    expect(client.welcome.maxFrameBytes).toBe(1_048_576);
    expect(client.welcome.tokenExpiresMs).toBeGreaterThan(Date.now());
    const before = Date.now();
    const pong = await client.ping();
    expect(pong.clientTimeMs).toBeGreaterThanOrEqual(before);
    expect(pong.serverTimeMs).toBeGreaterThan(0);
  });

  it('sends the credential in the query string when asked', async () => {
    const client = await open({ credentialIn: 'query', subprotocol: 'json' });
    await expect(client.ping()).resolves.toBeTruthy();
  });

  it('delivers events between subprotocols, in order, to the subscription and the event listener', async () => {
    const sub = await open({ subprotocol: 'json' });
    const pub = await open({ subprotocol: 'proto' });
    const got: Event[] = [];
    const seen: Event[] = [];
    sub.on('event', (e) => seen.push(e));
    await sub.subscribe('room/1', (e) => got.push(e));
    const payloads = Array.from({ length: 20 }, (_, i) => `msg-${i}`);
    for (const p of payloads) await pub.publish('room/1', p, 'text/plain');
    await pub.publish('room/other', 'not for us');
    await until(() => (got.length >= payloads.length ? true : undefined));
    expect(got.map((e) => text(e.payload))).toEqual(payloads);
    expect(got.every((e) => e.topic === 'room/1' && e.contentType === 'text/plain' && e.publishedMs > 0)).toBe(true);
    expect(seen).toHaveLength(payloads.length);
  });

  it('carries binary payloads exactly in both subprotocols', async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    for (const subprotocol of ['proto', 'json'] as const) {
      const client = await open({ subprotocol });
      const got: Event[] = [];
      await client.subscribe(`bin/${subprotocol}`, (e) => got.push(e));
      await client.publish(`bin/${subprotocol}`, bytes);
      const event = await until(() => got[0]);
      expect(Array.from(event.payload)).toEqual(Array.from(bytes));
    }
  });

  it('stops delivering after unsubscribe', async () => {
    const client = await open();
    const got: Event[] = [];
    await client.subscribe('quiet/1', (e) => got.push(e));
    await client.publish('quiet/1', 'one');
    await until(() => got[0]);
    await client.unsubscribe('quiet/1');
    await client.publish('quiet/1', 'two');
    await client.ping(); // the gateway has handled the publish by now
    expect(got.map((e) => text(e.payload))).toEqual(['one']);
  });

  it('recovers missed events from history and tracks positions', async () => {
    const first = await open();
    const got: Event[] = [];
    await first.subscribe('hist/a', (e) => got.push(e));
    await first.publish('hist/a', 'e1');
    await until(() => got[0]);
    const resumeFrom = first.positionOf('hist/a');
    expect(resumeFrom).toEqual(got[0]!.position);
    await first.publish('hist/a', 'e2');
    await first.publish('hist/a', 'e3');

    const second = await open({ subprotocol: 'json' });
    const replayed: Event[] = [];
    const resumed = await second.subscribe('hist/a', (e) => replayed.push(e), { recover: true, since: resumeFrom! });
    expect(resumed).toMatchObject({ replayed: 2, recovered: true });
    expect(replayed.map((e) => text(e.payload))).toEqual(['e2', 'e3']);

    const stale = await second.subscribe('hist/a', () => undefined, { recover: true, since: { offset: 1, epoch: 'another-epoch' } });
    expect(stale.recovered).toBe(false);
  });

  it.each(['proto', 'json'] as const)('invokes a function over %s and gets its result', async (subprotocol) => {
    const client = await open({ subprotocol });
    const result = await client.invoke('sha256', 'hello', { contentType: 'text/plain', metadata: { trace: 'abc' } });
    expect(text(result.payload)).toBe(createHash('sha256').update('hello').digest('hex'));
    expect(result.nodeId.length).toBeGreaterThan(0);
    const echoed = await client.invoke('echo', new Uint8Array([0, 1, 254, 255]), { contentType: 'application/x-test' });
    expect(Array.from(echoed.payload)).toEqual([0, 1, 254, 255]);
    expect(echoed.contentType).toBe('application/x-test');
  });

  it('passes progress to onProgress before the result', async () => {
    const client = await open({ subprotocol: 'json' });
    const fractions: number[] = [];
    const result = await client.invoke('primes', '3000000', { onProgress: (p) => fractions.push(p.fraction) });
    expect(JSON.parse(text(result.payload))).toEqual({ n: 3_000_000, count: 216_816 });
    expect(fractions.length).toBeGreaterThan(0);
    expect(fractions.every((f, i) => f > 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!))).toBe(true);
  });

  it('matches each answer to its own request among many in flight', async () => {
    const client = await open();
    const inputs = Array.from({ length: 60 }, (_, i) => `payload-${i}`);
    const results = await Promise.all(inputs.map((p) => client.invoke('echo', p)));
    expect(results.map((r) => text(r.payload))).toEqual(inputs);
  });

  it('cancels through an AbortSignal and ends with CANCELLED', async () => {
    const client = await open();
    const abort = new AbortController();
    const call = client.invoke('sleep', '20000', { signal: abort.signal });
    setTimeout(() => abort.abort(), 300);
    expect((await rejection(call)).code).toBe(Code.CANCELLED);
    await expect(client.invoke('echo', 'still here')).resolves.toBeTruthy();
    abort.abort();
    expect((await rejection(client.invoke('echo', 'x', { signal: abort.signal }))).code).toBe(Code.CANCELLED);
  });

  it('reports the deadline and unknown functions as the gateway codes them', async () => {
    const client = await open();
    expect((await rejection(client.invoke('sleep', '10000', { timeoutMs: 300 }))).code).toBe(Code.DEADLINE_EXCEEDED);
    expect((await rejection(client.invoke('no-such-function', 'x'))).code).toBe(Code.NOT_FOUND);
    expect((await rejection(client.invoke('primes', 'not a number'))).code).toBe(Code.INVALID_ARGUMENT);
  });

  it('keeps within the gateway\'s max in flight: requests beyond it wait in order, ping does not', async () => {
    const narrow = await startTestGateway({ RELAYGATE_MAX_IN_FLIGHT: '4', RELAYGATE_NODES: node.url });
    try {
      const client = await RelaygateClient.connect(narrow.wsUrl, { token: await testToken() });
      clients.push(client);
      expect(client.welcome.maxInFlight).toBe(4);
      const order: number[] = [];
      const calls = Array.from({ length: 24 }, (_, i) => client.invoke('sleep', '30').then(() => order.push(i)));
      const abort = new AbortController();
      const dropped = rejection(client.invoke('sleep', '30', { signal: abort.signal }));
      abort.abort();
      await expect(client.ping()).resolves.toBeTruthy(); // not held behind the queue
      expect((await dropped).code).toBe(Code.CANCELLED);
      await Promise.all(calls);
      expect(order).toHaveLength(24);
      // Nothing was refused with RESOURCE_EXHAUSTED, and the queue is empty again.
      await expect(client.invoke('echo', 'after')).resolves.toBeTruthy();
    } finally {
      await narrow.close();
    }
  });

  it('rejects requests in flight when the connection closes', async () => {
    const client = await open();
    const call = client.invoke('sleep', '20000');
    const closed = new Promise((resolve) => client.once('close', resolve));
    await client.ping();
    await client.close();
    const err = await rejection(call);
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.closeCode).toBe(1000);
    await expect(closed).resolves.toMatchObject({ code: 1000 });
  });

  it('reports PERMISSION_DENIED and INVALID_ARGUMENT and keeps the connection open', async () => {
    const client = await open({ token: await testToken({ scope: 'subscribe:mine/* publish:mine/*' }) });
    expect((await rejection(client.subscribe('yours/1', () => undefined))).code).toBe(Code.PERMISSION_DENIED);
    expect((await rejection(client.publish('yours/1', 'x'))).code).toBe(Code.PERMISSION_DENIED);
    expect((await rejection(client.subscribe('mine/../yours', () => undefined))).code).toBe(Code.INVALID_ARGUMENT);
    expect((await rejection(client.invoke('sha256', 'x'))).code).toBe(Code.PERMISSION_DENIED);
    await expect(client.subscribe('mine/1', () => undefined)).resolves.toBeTruthy();
    await expect(client.ping()).resolves.toBeTruthy();
  });

  it('keeps tenants apart', async () => {
    const a = await open({ token: await testToken({ tenant: 'acme' }) });
    const b = await open({ token: await testToken({ tenant: 'globex' }) });
    const gotA: Event[] = [];
    const gotB: Event[] = [];
    await a.subscribe('shared/topic', (e) => gotA.push(e));
    await b.subscribe('shared/topic', (e) => gotB.push(e));
    await b.publish('shared/topic', 'globex only');
    await until(() => gotB[0]);
    await a.ping();
    expect(gotA).toHaveLength(0);
  });

  it('refreshes with a token for the same subject only', async () => {
    const client = await open();
    await expect(client.refresh(await testToken({ ttlMs: 7_200_000 }))).resolves.toBeTruthy();
    expect((await rejection(client.refresh(await testToken({ sub: 'mallory' })))).code).toBe(Code.UNAUTHENTICATED);
    expect((await rejection(client.refresh('garbage'))).code).toBe(Code.UNAUTHENTICATED);
    await expect(client.ping()).resolves.toBeTruthy();
  });

  it('turns a refused upgrade into UNAUTHENTICATED with the HTTP status', async () => {
    const expired = await new SignJWT({ sub: 'alice', scope: '' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(TEST_SECRET));
    for (const token of ['not-a-jwt', await testToken({ secret: 'some-other-secret-0123456789abcdef' }), expired]) {
      const err = await rejection(RelaygateClient.connect(gw.wsUrl, { token, ca: cert.cert }));
      expect(err.code).toBe(Code.UNAUTHENTICATED);
      expect(err.httpStatus).toBe(401);
      expect(err.message).not.toContain(token);
    }
  });

  it('verifies the gateway certificate unless told otherwise', async () => {
    const err = await rejection(RelaygateClient.connect(gw.wsUrl, { token: await testToken() }));
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.message).toMatch(/certificate/i);
    const insecure = await open({ ca: undefined, rejectUnauthorized: false } as Partial<ConnectOptions>);
    await expect(insecure.ping()).resolves.toBeTruthy();
  });

  it('never puts a query-string credential into an error message', async () => {
    const token = await testToken();
    for (const url of ['not a url at all', 'ws://127.0.0.1:1/v1/ws', 'ftp://127.0.0.1/v1/ws']) {
      const err = await rejection(RelaygateClient.connect(url, { token, credentialIn: 'query' }));
      expect(err.message).not.toContain(token.slice(-20));
    }
  });

  it('answers UNAVAILABLE when nothing listens', async () => {
    const err = await rejection(RelaygateClient.connect('ws://127.0.0.1:1/v1/ws', { token: 't' }));
    expect(err.code).toBe(Code.UNAVAILABLE);
  });

  it('announces a draining gateway with goAway, then a close that invites a reconnect', async () => {
    const draining = await startTestGateway({ RELAYGATE_DRAIN_GRACE: '200ms', RELAYGATE_CLOSE_SPREAD: '100ms' });
    try {
      const client = await RelaygateClient.connect(draining.wsUrl, { token: await testToken() });
      const goAway = new Promise((resolve) => client.once('goAway', resolve));
      const drained = draining.gateway.drain();
      await expect(goAway).resolves.toMatchObject({ reconnectWithinMs: expect.any(Number) });
      await expect(client.closedInfo).resolves.toMatchObject({ code: 1001, reconnect: true, needsFreshToken: false });
      await drained;
    } finally {
      await draining.close();
    }
  });

  it('says a close for an expired credential needs a fresh token', async () => {
    const client = await open({ token: await testToken({ ttlMs: 1_000 }) });
    await expect(client.closedInfo).resolves.toMatchObject({ code: 4001, reconnect: true, needsFreshToken: true });
    expect((await rejection(client.ping())).closeCode).toBe(4001);
  });

  it('is told to retry (503) while the JWKS cannot be fetched, then connects with a JWKS-verified token', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    let up = true;
    const server = createServer((_req, res) => {
      if (!up) { res.writeHead(500).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const keyed = await startGateway(loadSettings('gateway', { RELAYGATE_HOST: '127.0.0.1', RELAYGATE_PORT: '0', RELAYGATE_JWKS_URL: jwksUrl }, []).values, silentLogger());
    const wsUrl = `ws://127.0.0.1:${keyed.port}/v1/ws`;
    try {
      const sign = (kid: string) => new SignJWT({ sub: 'carol', scope: 'publish:x' }).setProtectedHeader({ alg: 'ES256', kid }).setExpirationTime('1h').sign(privateKey);
      up = false;
      const err = await rejection(RelaygateClient.connect(wsUrl, { token: await sign('k1') }));
      expect([err.httpStatus, err.code]).toEqual([503, Code.UNAVAILABLE]);
      expect(err.retryAfterMs).toBeGreaterThan(0);
      up = true;
      const client = await RelaygateClient.connect(wsUrl, { token: await sign('k1') });
      clients.push(client);
      await expect(client.publish('x', 'hi')).resolves.toBeTruthy();
      expect((await rejection(RelaygateClient.connect(wsUrl, { token: await sign('k2') }))).httpStatus).toBe(401);
      expect((await rejection(RelaygateClient.connect(wsUrl, { token: await testToken() }))).httpStatus).toBe(401);
    } finally {
      await keyed.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a closed client rejects new requests at once and says why it closed', async () => {
    const client = await open();
    const info = await client.close();
    expect(info).toMatchObject({ code: 1000, reconnect: false, needsFreshToken: false });
    expect(client.isOpen).toBe(false);
    expect((await rejection(client.ping())).code).toBe(Code.UNAVAILABLE);
  });
});

describe('relaygate call | sub | pub', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relaygate-cli-'));
    env = { RELAYGATE_URL: gw.wsUrl, RELAYGATE_TOKEN: await testToken(), RELAYGATE_CA: cert.certFile };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('pub prints the Ack: empty without history, offset and epoch with it', async () => {
    const plain = await runCli(['pub', 'cli/plain', '--data', 'hello']);
    expect(plain.code).not.toBe(0); // no token, no URL
    const noHistory = await runCli(['pub', 'cli/plain', '--data', 'hello'], env);
    expect(noHistory.stderr).toBe('');
    expect([noHistory.code, noHistory.stdout]).toEqual([0, '{}\n']);
    const withHistory = await runCli(['pub', 'hist/cli', '--data', 'hello', '--json'], env);
    expect(withHistory.code).toBe(0);
    expect(JSON.parse(withHistory.stdout)).toMatchObject({ offset: expect.stringMatching(/^\d+$/), epoch: expect.any(String) });
  });

  it('sub prints each event as one JSON line until interrupted', async () => {
    const sub = startCli(['sub', 'cli/feed', 'cli/other', '--json'], env);
    try {
      await sub.waitFor(/subscribed to cli\/other/);
      const payloadFile = join(dir, 'payload.bin');
      writeFileSync(payloadFile, Buffer.from([0xff, 0xfe, 0x00]));
      expect((await runCli(['pub', 'cli/feed', '--data', '{"n":1}', '--content-type', 'application/json'], env)).code).toBe(0);
      expect((await runCli(['pub', 'cli/other', '--data', `@${payloadFile}`], env)).code).toBe(0);
      await sub.waitFor(/"payloadBase64"/);
      const lines = sub.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toMatchObject({ topic: 'cli/feed', payload: '{"n":1}', contentType: 'application/json' });
      expect(lines[1]).toMatchObject({ topic: 'cli/other', payloadBase64: Buffer.from([0xff, 0xfe, 0x00]).toString('base64') });
    } finally {
      expect(await sub.stop('SIGINT')).toBe(0);
    }
  });

  it('sub reconnects after a gateway drain and prints every event exactly once', async () => {
    const shared = { RELAYGATE_REDIS_URL: 'redis://127.0.0.1:6379', RELAYGATE_REDIS_PREFIX: `rg-sub-${process.pid}-${Date.now()}`, RELAYGATE_HISTORY: 'hist/**=100:1h', RELAYGATE_DRAIN_GRACE: '100ms', RELAYGATE_CLOSE_SPREAD: '50ms' };
    const first = await startTestGateway(shared);
    const second = await startTestGateway(shared);
    // The address sub knows stays the same while the gateway behind it changes.
    const proxy = await tcpProxy(first.port);
    const url = `ws://127.0.0.1:${proxy.port}/v1/ws`;
    const sub = startCli(['sub', 'hist/re'], { RELAYGATE_URL: url, RELAYGATE_TOKEN: env.RELAYGATE_TOKEN });
    try {
      await sub.waitFor(/subscribed to hist\/re/);
      const publisher = await RelaygateClient.connect(second.wsUrl, { token: await testToken() });
      clients.push(publisher);
      await publisher.publish('hist/re', 'e1');
      await sub.waitFor(/"payload":"e1"/);
      proxy.target = 1; // nothing listens: reconnect attempts fail until the new gateway is in place
      await first.gateway.drain();
      await sub.waitFor(/UNAVAILABLE/);
      await publisher.publish('hist/re', 'e2'); // missed while away: recovered from history
      proxy.target = second.port;
      await sub.waitFor(/resubscribed to hist\/re.*replayed 1, nothing missed/);
      await publisher.publish('hist/re', 'e3');
      await sub.waitFor(/"payload":"e3"/);
      const printed = sub.output().split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { payload: string }).payload);
      expect(printed).toEqual(['e1', 'e2', 'e3']);
      expect(sub.output()).toMatch(/connection closed \(1001.*reconnecting/);
    } finally {
      expect(await sub.stop('SIGINT')).toBe(0);
      proxy.close();
      await first.close();
      await second.close();
    }
  });

  it('sub --no-reconnect ends with the close', async () => {
    const once = await startTestGateway({ RELAYGATE_DRAIN_GRACE: '100ms', RELAYGATE_CLOSE_SPREAD: '50ms' });
    const sub = startCli(['sub', 'a/b', '--no-reconnect'], { RELAYGATE_URL: `ws://127.0.0.1:${once.port}/v1/ws`, RELAYGATE_TOKEN: env.RELAYGATE_TOKEN });
    try {
      const exited = new Promise<number | null>((resolve) => sub.child.once('exit', resolve));
      await sub.waitFor(/subscribed to a\/b/);
      await once.gateway.drain();
      expect(await exited).toBe(1);
      expect(sub.output()).toMatch(/connection closed \(1001/);
    } finally {
      await sub.stop('SIGKILL');
      await once.close();
    }
  });

  it('sub --recover replays history first', async () => {
    const first = await runCli(['pub', 'hist/replay', '--data', 'one'], env);
    const { offset, epoch } = JSON.parse(first.stdout) as { offset: string; epoch: string };
    await runCli(['pub', 'hist/replay', '--data', 'two'], env);
    const sub = startCli(['sub', 'hist/replay', '--since', `${offset}:${epoch}`], env);
    try {
      await sub.waitFor(/replayed 1, nothing missed/);
      expect(sub.output()).toContain('"payload":"two"');
      expect(sub.output()).not.toContain('"payload":"one"');
    } finally {
      await sub.stop('SIGINT');
    }
  });

  it('pub and sub report a refused grant with exit code 1', async () => {
    const limited = { ...env, RELAYGATE_TOKEN: await testToken({ scope: 'invoke:*' }) };
    const pub = await runCli(['pub', 'cli/x', '--data', 'x'], limited);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain('PERMISSION_DENIED');
    const sub = await runCli(['sub', 'cli/x'], limited);
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain('PERMISSION_DENIED');
  });

  it('call prints the result payload, unchanged, on stdout', async () => {
    const call = await runCli(['call', 'sha256', '--data', 'hello', '--timeout', '5s', '--meta', 'trace=abc,span=1'], env);
    expect([call.code, call.stdout, call.stderr]).toEqual([0, createHash('sha256').update('hello').digest('hex'), '']);
    const file = join(dir, 'input.bin');
    writeFileSync(file, Buffer.from([1, 2, 3, 250]));
    const digest = await runCli(['call', 'sha256', '--data', `@${file}`, '--json'], env);
    expect([digest.code, digest.stdout]).toEqual([0, createHash('sha256').update(Buffer.from([1, 2, 3, 250])).digest('hex')]);
    const echo = await runCli(['call', 'echo', '--data', 'line one\nline two\n', '--json'], env);
    expect([echo.code, echo.stdout]).toEqual([0, 'line one\nline two\n']);
  });

  it('call prints progress lines on stderr', async () => {
    const call = await runCli(['call', 'primes', '--data', '3000000'], env);
    expect(call.code).toBe(0);
    expect(JSON.parse(call.stdout)).toEqual({ n: 3_000_000, count: 216_816 });
    const lines = call.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^progress \d+% \{"below":\d+,"count":\d+\}$/);
  });

  it('call reports the gateway error and exits 1', async () => {
    const call = await runCli(['call', 'sleep', '--data', '5000', '--timeout', '200ms'], env);
    expect(call.code).toBe(1);
    expect(call.stderr).toMatch(/^relaygate call: DEADLINE_EXCEEDED: /m);
    expect(call.stdout).toBe('');
    const missing = await runCli(['call', 'no-such-function'], env);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('NOT_FOUND')]);
  });

  it('call cancels on Ctrl-C and exits 130', async () => {
    const call = startCli(['call', 'sleep', '--data', '20000'], env);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await call.stop('SIGINT')).toBe(130);
    expect(call.output()).toContain('CANCELLED');
  });

  it('refuses an untrusted certificate with a hint, and accepts --insecure', async () => {
    const { RELAYGATE_CA: _, ...noCa } = env;
    const refused = await runCli(['pub', 'cli/tls', '--data', 'x'], noCa);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('UNAVAILABLE');
    expect(refused.stderr).toContain('--insecure');
    const insecure = await runCli(['pub', 'cli/tls', '--data', 'x', '--insecure'], noCa);
    expect(insecure.code).toBe(0);
  });

  it('a bad token is refused with UNAUTHENTICATED', async () => {
    const r = await runCli(['pub', 'cli/x', '--data', 'x'], { ...env, RELAYGATE_TOKEN: 'nope' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('UNAUTHENTICATED');
    expect(r.stderr).not.toContain('nope');
  });

  it.each<[string, string[], Record<string, string | undefined>, RegExp]>([
    ['no token', ['pub', 'a', '--data', 'x'], { RELAYGATE_TOKEN: undefined }, /RELAYGATE_TOKEN/],
    ['a bad topic', ['pub', 'a/../b', '--data', 'x'], {}, /<topic>/],
    ['a wildcard topic', ['sub', 'a/*'], {}, /<topic>/],
    ['a bad function name', ['call', 'a/b'], {}, /<function>/],
    ['no function', ['call'], {}, /<function>/],
    ['a bad timeout', ['call', 'f', '--timeout', 'soon'], {}, /--timeout/],
    ['bad metadata', ['call', 'f', '--meta', 'novalue'], {}, /--meta/],
    ['an unknown flag', ['pub', 'a', '--dta', 'x'], {}, /--dta/],
    ['a missing data file', ['pub', 'a', '--data', '@/nonexistent/file'], {}, /--data/],
    ['a URL that is not ws', ['pub', 'a'], { RELAYGATE_URL: 'http://127.0.0.1:1/' }, /RELAYGATE_URL/],
    ['an unreadable CA file', ['pub', 'a'], { RELAYGATE_CA: '/nonexistent/ca.pem' }, /RELAYGATE_CA/],
    ['a bad --since', ['sub', 'a', '--since', 'yesterday'], {}, /--since/],
  ])('exits 2 naming the problem for %s', async (_name, args, overrides, pattern) => {
    const r = await runCli(args, { ...env, ...overrides });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
