// Connecting over real TLS with both subprotocols: Welcome first, Ping/Pong, and the HTTP surface.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { selfSignedCert, startTestGateway, testToken, type TestCert, type TestGateway } from '../helpers/gateway.js';
import { TestClient, upgradeRefusal } from '../helpers/ws-client.js';

let cert: TestCert;
let gw: TestGateway;
let dispatcher: Agent;

beforeAll(async () => {
  cert = selfSignedCert('s3cret-pass');
  gw = await startTestGateway({ RELAYGATE_TLS_CERT: cert.certFile, RELAYGATE_TLS_KEY: cert.keyFile, RELAYGATE_TLS_PASSPHRASE: 's3cret-pass' });
  dispatcher = new Agent({ connect: { ca: cert.cert } });
});

afterAll(async () => {
  await gw?.close();
  await dispatcher?.close();
  cert?.remove();
});

describe.each(['proto', 'json'] as const)('over wss with %s', (subprotocol) => {
  it('sends Welcome first with the configured limits, then answers Ping with Pong', async () => {
    const token = await testToken({ ttlMs: 600_000 });
    const client = await TestClient.connect(gw.wsUrl, { token, subprotocol, ca: cert.cert });
    expect(client.ws.protocol).toBe(`relaygate.v1.${subprotocol}`);
    const w = client.welcome.body;
    expect(String(w.sessionId)).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(w.gatewayId).toBe(gw.gateway.gatewayId);
    expect(Number(w.maxFrameBytes)).toBe(1048576);
    expect(Number(w.maxInFlight)).toBe(256);
    expect(Math.abs(Number(w.tokenExpiresMs) - (Date.now() + 600_000))).toBeLessThan(60_000);
    const before = Date.now();
    const pong = await client.ping(7);
    expect(Number(pong.body.clientTimeMs)).toBe(7);
    expect(Number(pong.body.serverTimeMs)).toBeGreaterThanOrEqual(before - 1000);
    client.close();
    expect((await client.closed).code).toBe(1000);
  });

  it('accepts the token in the access_token query parameter', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), tokenInQuery: true, subprotocol, ca: cert.cert });
    await client.ping(1);
    client.close();
  });
});

describe('over wss', () => {
  it('refuses an upgrade without a credential with 401 and the JSON body', async () => {
    const refusal = await upgradeRefusal(gw.wsUrl, { ca: cert.cert });
    expect(refusal).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: 'no credential' } });
  });

  it('does not negotiate permessage-deflate by default', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), ca: cert.cert, perMessageDeflate: true });
    expect(client.ws.extensions).toBe('');
    await client.ping(1);
    client.close();
  });
});

describe('settings', () => {
  it('RELAYGATE_PERMESSAGE_DEFLATE=true negotiates compression', async () => {
    const deflating = await startTestGateway({ RELAYGATE_PERMESSAGE_DEFLATE: 'true' });
    const client = await TestClient.connect(deflating.wsUrl, { token: await testToken(), perMessageDeflate: true, subprotocol: 'json' });
    expect(client.ws.extensions).toContain('permessage-deflate');
    await client.ping(1);
    client.close();
    await deflating.close();
  });

  it('idle timeout: a peer that answers no WebSocket ping is closed; one that does stays', async () => {
    const idle = await startTestGateway({ RELAYGATE_IDLE_TIMEOUT: '8s' });
    const token = await testToken();
    const silent = await TestClient.connect(idle.wsUrl, { token, autoPong: false });
    const alive = await TestClient.connect(idle.wsUrl, { token });
    const started = Date.now();
    const closed = await silent.closed;
    expect(Date.now() - started).toBeGreaterThan(4000);
    expect(closed.code).not.toBe(1000);
    await alive.ping(2);
    alive.close();
    await idle.close();
  }, 40_000);
});

describe('HTTP surface', () => {
  it('GET /healthz answers 200', async () => {
    const res = await request(`${gw.httpUrl}/healthz`, { dispatcher });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 503 while no compute node is configured', async () => {
    const res = await request(`${gw.httpUrl}/readyz`, { dispatcher });
    expect(res.statusCode).toBe(503);
    expect(await res.body.json()).toMatchObject({ ready: false, draining: false, bus: true, compute: false });
  });

  it('GET /metrics exposes the core metrics in Prometheus text format', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token: await testToken(), ca: cert.cert });
    await client.ping(3);
    const res = await request(`${gw.httpUrl}/metrics`, { dispatcher });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = await res.body.text();
    expect(text).toMatch(/^relaygate_connections [1-9]/m);
    expect(text).toMatch(/^relaygate_frames_in_total\{kind="ping"\} [1-9]/m);
    expect(text).toMatch(/^relaygate_frames_out_total\{kind="welcome"\} [1-9]/m);
    expect(text).toMatch(/^relaygate_event_loop_delay_seconds\{quantile="0.99"\}/m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    client.close();
  });

  it('unknown routes answer 404 with the JSON error body', async () => {
    const res = await request(`${gw.httpUrl}/nope`, { dispatcher });
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toEqual({ code: 'NOT_FOUND', message: 'no such route' });
  });
});
