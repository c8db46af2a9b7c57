// Every upgrade refusal through a real upgrade on a real port: the status, the JSON body, and that
// no WebSocket opens. The verifier's own cases are unit-tested in depth; here they go over the wire.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, TEST_SECRET, testToken, type TestGateway } from '../helpers/gateway.js';
import { TestClient, upgradeRefusal } from '../helpers/ws-client.js';

const secretKey = new TextEncoder().encode(TEST_SECRET);
const nowSec = (): number => Math.floor(Date.now() / 1000);

function hs256(claims: Record<string, unknown>, key: Uint8Array = secretKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
}

/** An unsigned token (alg "none"), built by hand since jose refuses to make one. */
function unsigned(claims: Record<string, unknown>): string {
  const enc = (v: unknown): string => base64url.encode(JSON.stringify(v));
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`;
}

describe('HS256 gateway with audience, issuer and an origin allow-list', () => {
  let gw: TestGateway;
  const claims = () => ({ sub: 'alice', scope: 'invoke:*', exp: nowSec() + 600, aud: 'relaygate-test', iss: 'https://issuer.test' });

  beforeAll(async () => {
    gw = await startTestGateway({
      RELAYGATE_JWT_AUDIENCE: 'relaygate-test',
      RELAYGATE_JWT_ISSUER: 'https://issuer.test',
      RELAYGATE_ORIGINS: 'https://app.example.com,http://localhost:3000',
    });
  });
  afterAll(() => gw?.close());

  it('accepts a valid token, with an allowed Origin or with none', async () => {
    const token = await hs256(claims());
    const a = await TestClient.connect(gw.wsUrl, { token, origin: 'https://app.example.com' });
    const b = await TestClient.connect(gw.wsUrl, { token });
    await a.ping(1);
    await b.ping(1);
    a.close();
    b.close();
  });

  const cases: [string, () => Promise<{ token?: string; tokenInQuery?: boolean; headers?: Record<string, string> }>][] = [
    ['no token', async () => ({})],
    ['a non-Bearer Authorization header', async () => ({ headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } })],
    ['garbage instead of a JWT', async () => ({ token: 'not-a-jwt' })],
    ['a bad signature', async () => ({ token: await hs256(claims(), new TextEncoder().encode('another-secret-another-secret-00')) })],
    ['an expired token', async () => ({ token: await hs256({ ...claims(), exp: nowSec() - 3600 }) })],
    ['a token without exp', async () => ({ token: await hs256({ sub: 'alice', scope: 'invoke:*', aud: 'relaygate-test', iss: 'https://issuer.test' }) })],
    ['a token without sub', async () => ({ token: await hs256({ ...claims(), sub: undefined }) })],
    ['alg none', async () => ({ token: unsigned(claims()) })],
    ['a wrong audience', async () => ({ token: await hs256({ ...claims(), aud: 'someone-else' }) })],
    ['a wrong issuer', async () => ({ token: await hs256({ ...claims(), iss: 'https://evil.test' }) })],
    ['an expired token in the query string', async () => ({ token: await hs256({ ...claims(), exp: nowSec() - 3600 }), tokenInQuery: true })],
  ];
  it.each(cases)('refuses %s with 401 and opens nothing', async (_name, make) => {
    const refusal = await upgradeRefusal(gw.wsUrl, await make());
    expect(refusal.status).toBe(401);
    expect(refusal.body.code).toBe('UNAUTHENTICATED');
    expect(typeof refusal.body.message).toBe('string');
  });

  it('refuses an Origin not on the allow-list with 403 (exact match)', async () => {
    const token = await hs256(claims());
    for (const origin of ['https://evil.example.com', 'https://app.example.com:443', 'http://app.example.com', 'https://app.example.com.evil.test']) {
      const refusal = await upgradeRefusal(gw.wsUrl, { token, origin });
      expect(refusal.status, origin).toBe(403);
      expect(refusal.body.code).toBe('PERMISSION_DENIED');
    }
  });

  it('refuses a missing or unknown subprotocol with 400', async () => {
    const token = await hs256(claims());
    for (const protocols of [[], ['relaygate.v2.proto'], ['Relaygate.V1.Json'], ['mqtt']]) {
      const refusal = await upgradeRefusal(gw.wsUrl, { token, protocols });
      expect(refusal.status, JSON.stringify(protocols)).toBe(400);
      expect(refusal.body.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('picks ours from a list of offered subprotocols', async () => {
    const client = await TestClient.connect(gw.wsUrl, { token: await hs256(claims()), protocols: ['mqtt', 'relaygate.v1.json'], subprotocol: 'json' });
    expect(client.ws.protocol).toBe('relaygate.v1.json');
    await client.ping(2);
    client.close();
  });

  it('counts refusals by reason in /metrics', async () => {
    await upgradeRefusal(gw.wsUrl, {});
    const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^relaygate_upgrade_rejections_total\{reason="credential_missing"\} [1-9]/m);
    expect(text).toMatch(/^relaygate_upgrade_rejections_total\{reason="origin"\} [1-9]/m);
    expect(text).toMatch(/^relaygate_upgrade_rejections_total\{reason="subprotocol"\} [1-9]/m);
  });
});

describe('recently verified tokens', () => {
  it('upgrade and HTTP accept a token seen before without verifying it again, never past its exp', async () => {
    const gw = await startTestGateway({ RELAYGATE_JWT_CLOCK_TOLERANCE: '0' });
    try {
      const metric = async (result: string): Promise<number> => {
        const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
        return Number(new RegExp(`^relaygate_credential_checks_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
      };
      const token = await testToken({ ttlMs: 3000 });
      const clients = [];
      for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(gw.wsUrl, { token, subprotocol: i % 2 ? 'json' : 'proto' }));
      for (const [i, c] of clients.entries()) await c.ping(i + 1);
      expect(await metric('verified')).toBe(1);
      expect(await metric('cached')).toBe(2);
      const res = await fetch(`${gw.httpUrl}/v1/publish/a/b`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(await metric('cached')).toBe(3);
      const expiry = Number(clients[0]!.welcome.body.tokenExpiresMs);
      for (const c of clients) expect((await c.closed).code).toBe(4001);
      while (Date.now() <= expiry) await new Promise((r) => setTimeout(r, 100));
      const refusal = await upgradeRefusal(gw.wsUrl, { token });
      expect(refusal.status).toBe(401);
      expect(refusal.body.message).toMatch(/expired/);
    } finally {
      await gw.close();
    }
  });
});

describe('RS256 gateway (PEM public key)', () => {
  let gw: TestGateway;
  let dir: string;
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relaygate-rsa-'));
    writeFileSync(join(dir, 'public.pem'), publicPem);
    gw = await startTestGateway({ RELAYGATE_JWT_PUBLIC_KEY: join(dir, 'public.pem') });
  });
  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts an RS256 token signed with the private key', async () => {
    const token = await new SignJWT({ sub: 'bob', scope: 'invoke:*', exp: nowSec() + 600 }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
    const client = await TestClient.connect(gw.wsUrl, { token });
    await client.ping(1);
    client.close();
  });

  it('refuses HS256 signed with the RSA public key as the secret (algorithm confusion) with 401', async () => {
    const token = await hs256({ sub: 'bob', scope: 'invoke:*', exp: nowSec() + 600 }, new TextEncoder().encode(publicPem));
    const refusal = await upgradeRefusal(gw.wsUrl, { token });
    expect(refusal.status).toBe(401);
    expect(refusal.body.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an HS256 token made with the shared test secret with 401', async () => {
    const refusal = await upgradeRefusal(gw.wsUrl, { token: await testToken() });
    expect(refusal.status).toBe(401);
  });
});
