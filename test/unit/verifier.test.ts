import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompactSign, SignJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, type JWK } from 'jose';
import { AuthError, createTokenVerifier, verifierOptionsFrom, type AuthReason, type VerifierOptions } from '../../src/auth/verifier.js';
import { signToken } from '../../src/auth/token.js';
import { ConfigError, loadSettings } from '../../src/config.js';
import { Code, GatewayError } from '../../src/errors.js';
import type { TokenVerifier } from '../../src/auth/principal.js';

const secret = 'a-test-secret-of-reasonable-length-0123456789';
const base: VerifierOptions = { clockToleranceMs: 5_000, tenantClaim: 'tenant' };
const nowSec = () => Math.floor(Date.now() / 1000);
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
const pairs: Record<'RS256' | 'ES256' | 'EdDSA', KeyPair & { pem: string }> = {} as never;

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: 'alice', scope: 'invoke:* subscribe:users/{sub}/**', exp: nowSec() + 60, ...extra };
}

async function hs(payload: Record<string, unknown>, key = secret, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(key));
}

async function signWith(alg: keyof typeof pairs, payload: Record<string, unknown>, kid?: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).sign(pairs[alg].privateKey);
}

async function rejection(verifier: TokenVerifier, token: string): Promise<AuthError> {
  const err = await verifier.verify(token).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(AuthError);
  const auth = err as AuthError;
  expect(auth.code).toBe(Code.UNAUTHENTICATED);
  if (token.length > 0) expect(auth.message).not.toContain(token.slice(0, 20));
  return auth;
}

async function expectReason(verifier: TokenVerifier, token: string, reason: AuthReason): Promise<void> {
  expect((await rejection(verifier, token)).reason).toBe(reason);
}

async function configError(opts: VerifierOptions): Promise<ConfigError> {
  const err = await createTokenVerifier(opts).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

beforeAll(async () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    const pair = await generateKeyPair(alg, { extractable: true });
    pairs[alg] = { ...pair, pem: await exportSPKI(pair.publicKey) };
  }
});

describe('HS256 secret', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => { verifier = await createTokenVerifier({ ...base, secret }); });

  it('accepts a valid token and builds the principal', async () => {
    const exp = nowSec() + 120;
    const p = await verifier.verify(await hs(claims({ exp })));
    expect(p.subject).toBe('alice');
    expect(p.tenant).toBe('default');
    expect(p.expiresAtMs).toBe(exp * 1000);
    expect(p.grants.allows('invoke', 'sha256')).toBe(true);
    expect(p.grants.allows('subscribe', 'users/alice/x')).toBe(true);
    expect(p.grants.allows('subscribe', 'users/bob/x')).toBe(false);
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('accepts tokens from signToken', async () => {
    const token = await signToken({ secret, sub: 'bob', scope: 'publish:chat/*', tenant: 'acme', ttlMs: 60_000 });
    const p = await verifier.verify(token);
    expect([p.subject, p.tenant, p.grants.allows('publish', 'chat/x')]).toEqual(['bob', 'acme', true]);
  });

  it('accepts a scope given as an array of grants', async () => {
    const p = await verifier.verify(await hs(claims({ scope: ['invoke:sha256', 'publish:a'] })));
    expect(p.grants.allows('invoke', 'sha256')).toBe(true);
    expect(p.grants.allows('publish', 'a')).toBe(true);
  });

  it('treats a missing scope as no grants', async () => {
    const p = await verifier.verify(await hs({ sub: 'x', exp: nowSec() + 60 }));
    expect(p.grants.allows('invoke', 'sha256')).toBe(false);
  });

  it.each<[string, () => Promise<string>, AuthReason]>([
    ['empty token', async () => '', 'missing'],
    ['not a JWT', async () => 'not-a-jwt', 'malformed'],
    ['two parts', async () => 'abc.def', 'malformed'],
    ['signed payload that is not JSON', () => new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret)), 'malformed'],
    ['over-long token', async () => 'a'.repeat(20_000), 'malformed'],
    ['wrong secret', () => hs(claims(), 'another-secret-entirely-0123456789abcdef'), 'signature'],
    ['expired', () => hs(claims({ exp: nowSec() - 60 })), 'expired'],
    ['missing exp', () => hs({ sub: 'alice', scope: '' }), 'claims'],
    ['exp not a number', () => hs(claims({ exp: 'tomorrow' })), 'claims'],
    ['missing sub', () => hs({ scope: '', exp: nowSec() + 60 }), 'subject'],
    ['empty sub', () => hs(claims({ sub: '' })), 'subject'],
    ['sub not a string', () => hs(claims({ sub: 42 })), 'subject'],
    ['sub with a line break (header injection)', () => hs(claims({ sub: 'alice\r\nx-relaygate-tenant: other' })), 'subject'],
    ['sub over 1024 characters', () => hs(claims({ sub: 's'.repeat(1025) })), 'subject'],
    ['nbf in the future', () => hs(claims({ nbf: nowSec() + 120 })), 'not_yet_valid'],
    ['HS512 not on the allow-list', () => hs(claims(), secret, 'HS512'), 'algorithm'],
    ['scope of the wrong type', () => hs(claims({ scope: { invoke: '*' } })), 'claims'],
    ['tenant with a colon', () => hs(claims({ tenant: 'acme:evil' })), 'tenant'],
    ['tenant with a slash', () => hs(claims({ tenant: 'acme/x' })), 'tenant'],
    ['tenant "..", an escape attempt', () => hs(claims({ tenant: '..' })), 'tenant'],
    ['empty tenant', () => hs(claims({ tenant: '' })), 'tenant'],
    ['numeric tenant', () => hs(claims({ tenant: 7 })), 'tenant'],
    ['Cyrillic look-alike tenant', () => hs(claims({ tenant: 'аcme' })), 'tenant'],
  ])('rejects %s', async (_name, make, reason) => {
    await expectReason(verifier, await make(), reason);
  });

  it('rejects a hand-crafted alg none token', async () => {
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`;
    await expectReason(verifier, token, 'algorithm');
  });

  it('rejects an exp too large to be a time (1e400 reads as Infinity)', async () => {
    const payload = JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e400');
    const token = await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
    await expectReason(verifier, token, 'claims');
  });

  it('rejects a token whose payload was altered after signing', async () => {
    const [h, , s] = (await hs(claims({ scope: 'invoke:sha256' }))).split('.');
    await expectReason(verifier, `${h}.${b64url(claims({ scope: 'invoke:*' }))}.${s}`, 'signature');
  });

  it('honours the clock tolerance on exp and nbf', async () => {
    const tolerant = await createTokenVerifier({ ...base, secret, clockToleranceMs: 30_000 });
    const strict = await createTokenVerifier({ ...base, secret, clockToleranceMs: 0 });
    const recentlyExpired = await hs(claims({ exp: nowSec() - 10 }));
    const soonValid = await hs(claims({ nbf: nowSec() + 10 }));
    await expect(tolerant.verify(recentlyExpired)).resolves.toMatchObject({ subject: 'alice' });
    await expect(tolerant.verify(soonValid)).resolves.toMatchObject({ subject: 'alice' });
    await expectReason(strict, recentlyExpired, 'expired');
    await expectReason(strict, soonValid, 'not_yet_valid');
  });

  it('checks aud and iss when configured', async () => {
    const checked = await createTokenVerifier({ ...base, secret, audience: 'relaygate', issuer: 'https://idp.example' });
    await expect(checked.verify(await hs(claims({ aud: 'relaygate', iss: 'https://idp.example' })))).resolves.toBeTruthy();
    await expect(checked.verify(await hs(claims({ aud: ['other', 'relaygate'], iss: 'https://idp.example' })))).resolves.toBeTruthy();
    await expectReason(checked, await hs(claims({ aud: 'other', iss: 'https://idp.example' })), 'audience');
    await expectReason(checked, await hs(claims({ iss: 'https://idp.example' })), 'audience');
    await expectReason(checked, await hs(claims({ aud: 'relaygate', iss: 'https://evil.example' })), 'issuer');
    await expectReason(checked, await hs(claims({ aud: 'relaygate' })), 'issuer');
    // Without configuration, aud and iss are not checked.
    await expect(verifier.verify(await hs(claims({ aud: 'anything', iss: 'anyone' })))).resolves.toBeTruthy();
  });

  it('reads the tenant from the configured claim name', async () => {
    const org = await createTokenVerifier({ ...base, secret, tenantClaim: 'org' });
    expect((await org.verify(await hs(claims({ org: 'acme', tenant: 'ignored' })))).tenant).toBe('acme');
    expect((await org.verify(await hs(claims({ tenant: 'ignored' })))).tenant).toBe('default');
    await expectReason(org, await hs(claims({ org: 'a:b' })), 'tenant');
    const token = await signToken({ secret, sub: 's', scope: '', tenant: 'beta', tenantClaim: 'org', ttlMs: 60_000 });
    expect((await org.verify(token)).tenant).toBe('beta');
  });

  it('does not read the tenant from the prototype chain', async () => {
    const proto = await createTokenVerifier({ ...base, secret, tenantClaim: 'toString' });
    expect((await proto.verify(await hs(claims()))).tenant).toBe('default');
  });

  it('reports each distinct ignored grant once', async () => {
    const reported: string[] = [];
    const v = await createTokenVerifier({ ...base, secret, onIgnoredGrant: (grant) => reported.push(grant) });
    const token = await hs(claims({ scope: 'invoke:* admin:all subscribe:a/**/b' }));
    for (let i = 0; i < 3; i++) await v.verify(token);
    expect(reported).toEqual(['admin:all', 'subscribe:a/**/b']);
  });

  it('keeps the jose error as the cause', async () => {
    const err = await rejection(verifier, await hs(claims({ exp: nowSec() - 60 })));
    expect((err.cause as Error).name).toBe('JWTExpired');
  });
});

describe('PEM public keys', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('accepts %s tokens and detects the key type', async (alg) => {
    const verifier = await createTokenVerifier({ ...base, publicKeyPem: pairs[alg].pem });
    expect((await verifier.verify(await signWith(alg, claims()))).subject).toBe('alice');
  });

  it('rejects HS256 signed with the RSA public key PEM as the HMAC secret (algorithm confusion)', async () => {
    const verifier = await createTokenVerifier({ ...base, publicKeyPem: pairs.RS256.pem });
    await expectReason(verifier, await hs(claims(), pairs.RS256.pem), 'algorithm');
  });

  it('rejects alg none with a public key', async () => {
    const verifier = await createTokenVerifier({ ...base, publicKeyPem: pairs.ES256.pem });
    await expectReason(verifier, `${b64url({ alg: 'none' })}.${b64url(claims())}.`, 'algorithm');
  });

  it('rejects a token of another key type, and one signed by another key', async () => {
    const verifier = await createTokenVerifier({ ...base, publicKeyPem: pairs.RS256.pem });
    await expectReason(verifier, await signWith('ES256', claims()), 'algorithm');
    const other = await generateKeyPair('RS256');
    const forged = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(other.privateKey);
    await expectReason(verifier, forged, 'signature');
  });

  it('accepts a certificate (with its chain) in place of a bare public key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaygate-cert-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-days', '1', '-subj', '/CN=issuer', '-nodes', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      const certPem = await readFile(cert, 'utf8');
      const verifier = await createTokenVerifier({ ...base, publicKeyPem: certPem + certPem });
      const privateKey = await importPKCS8(await readFile(key, 'utf8'), 'ES256');
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
      expect((await verifier.verify(token)).subject).toBe('alice');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('restricts a configured allow-list to what the key supports', async () => {
    const ps = await createTokenVerifier({ ...base, publicKeyPem: pairs.RS256.pem, algorithms: ['PS256'] });
    await expectReason(ps, await signWith('RS256', claims()), 'algorithm');
    const pssKey = await importPKCS8(await exportPKCS8(pairs.RS256.privateKey), 'PS256');
    const rsaPss = await new SignJWT(claims()).setProtectedHeader({ alg: 'PS256' }).sign(pssKey);
    expect((await ps.verify(rsaPss)).subject).toBe('alice');
  });

  it.each<[string, () => VerifierOptions, string]>([
    ['HS256 with a public key', () => ({ ...base, publicKeyPem: pairs.RS256.pem, algorithms: ['HS256'] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['none in the allow-list', () => ({ ...base, publicKeyPem: pairs.RS256.pem, algorithms: ['RS256', 'none'] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['an unknown algorithm', () => ({ ...base, secret, algorithms: ['HS257'] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['RS256 with a secret', () => ({ ...base, secret, algorithms: ['RS256'] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['ES256 with an RSA key', () => ({ ...base, publicKeyPem: pairs.RS256.pem, algorithms: ['ES256'] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['an empty allow-list', () => ({ ...base, secret, algorithms: [] }), 'RELAYGATE_JWT_ALGORITHMS'],
    ['garbage PEM', () => ({ ...base, publicKeyPem: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n' }), 'RELAYGATE_JWT_PUBLIC_KEY'],
    ['a private key', () => ({ ...base, publicKeyPem: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }), 'RELAYGATE_JWT_PUBLIC_KEY'],
    ['a 1024-bit RSA key', () => ({ ...base, publicKeyPem: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString() }), 'RELAYGATE_JWT_PUBLIC_KEY'],
    ['two keys in one PEM file', () => ({ ...base, publicKeyPem: pairs.RS256.pem + pairs.ES256.pem }), 'RELAYGATE_JWT_PUBLIC_KEY'],
    ['no key source', () => ({ ...base }), 'RELAYGATE_JWT_SECRET'],
    ['two key sources', () => ({ ...base, secret, publicKeyPem: pairs.RS256.pem }), 'RELAYGATE_JWT_SECRET'],
    ['a JWKS URL that is not a URL', () => ({ ...base, jwksUrl: 'not a url' }), 'RELAYGATE_JWKS_URL'],
    ['HS256 with a JWKS', () => ({ ...base, jwksUrl: 'https://idp.example/jwks', algorithms: ['HS256'] }), 'RELAYGATE_JWT_ALGORITHMS'],
  ])('refuses to start with %s', async (_name, opts, setting) => {
    expect((await configError(opts())).setting).toBe(setting);
  });
});

describe('JWKS URL', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  const keys: JWK[] = [];

  beforeAll(async () => {
    for (const [alg, kid] of [['RS256', 'rsa-1'], ['ES256', 'ec-1'], ['EdDSA', 'ed-1']] as const) {
      keys.push({ ...(await exportJWK(pairs[alg].publicKey)), kid, alg, use: 'sig' });
    }
    server = createServer((req, res) => {
      fetches++;
      if (req.url !== '/jwks.json') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(async () => { await new Promise((resolve) => server.close(resolve)); });

  it('verifies tokens of every key in the set and caches the set', async () => {
    const verifier = await createTokenVerifier({ ...base, jwksUrl: url });
    expect((await verifier.verify(await signWith('RS256', claims(), 'rsa-1'))).subject).toBe('alice');
    expect((await verifier.verify(await signWith('ES256', claims(), 'ec-1'))).subject).toBe('alice');
    expect((await verifier.verify(await signWith('EdDSA', claims(), 'ed-1'))).subject).toBe('alice');
    const before = fetches;
    await verifier.verify(await signWith('RS256', claims(), 'rsa-1'));
    expect(fetches).toBe(before);
  });

  it('rejects an unknown kid, a forged signature, alg none and HS256', async () => {
    const verifier = await createTokenVerifier({ ...base, jwksUrl: url, jwks: { cooldownMs: 60_000 } });
    await expectReason(verifier, await signWith('RS256', claims(), 'nobody'), 'signature');
    const other = await generateKeyPair('ES256');
    await expectReason(verifier, await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'ec-1' }).sign(other.privateKey), 'signature');
    await expectReason(verifier, `${b64url({ alg: 'none', kid: 'rsa-1' })}.${b64url(claims())}.`, 'algorithm');
    await expectReason(verifier, await hs(claims(), pairs.RS256.pem), 'algorithm');
  });

  it('picks up a rotated-in key by refetching the set for an unknown kid', async () => {
    const verifier = await createTokenVerifier({ ...base, jwksUrl: url, jwks: { cooldownMs: 0 } });
    await verifier.verify(await signWith('RS256', claims(), 'rsa-1'));
    const next = await generateKeyPair('ES256', { extractable: true });
    keys.push({ ...(await exportJWK(next.publicKey)), kid: 'ec-2', alg: 'ES256', use: 'sig' });
    try {
      const before = fetches;
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'ec-2' }).sign(next.privateKey);
      expect((await verifier.verify(token)).subject).toBe('alice');
      expect(fetches).toBe(before + 1);
    } finally {
      keys.pop();
    }
  });

  it('answers UNAVAILABLE, not UNAUTHENTICATED, when the key set cannot be fetched', async () => {
    const verifier = await createTokenVerifier({ ...base, jwksUrl: url.replace('/jwks.json', '/missing.json') });
    const err = await verifier.verify(await signWith('RS256', claims(), 'rsa-1')).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).not.toBeInstanceOf(AuthError);
    expect((err as GatewayError).code).toBe(Code.UNAVAILABLE);
    expect((err as GatewayError).retryAfterMs).toBeGreaterThan(0);
  });
});

describe('verifierOptionsFrom', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'relaygate-verifier-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('reads the PEM file named by RELAYGATE_JWT_PUBLIC_KEY', async () => {
    const path = join(dir, 'es256.pem');
    await writeFile(path, pairs.ES256.pem);
    const { values } = loadSettings('gateway', { RELAYGATE_JWT_PUBLIC_KEY: path, RELAYGATE_JWT_AUDIENCE: 'rg', RELAYGATE_TENANT_CLAIM: 'org' }, []);
    const opts = await verifierOptionsFrom(values);
    expect(opts).toMatchObject({ publicKeyPem: pairs.ES256.pem, audience: 'rg', tenantClaim: 'org', clockToleranceMs: 5_000 });
    const verifier = await createTokenVerifier(opts);
    expect((await verifier.verify(await signWith('ES256', claims({ aud: 'rg', org: 'acme' })))).tenant).toBe('acme');
  });

  it.each<[string, Record<string, string>, string]>([
    ['no key source', {}, 'RELAYGATE_JWT_SECRET'],
    ['two key sources', { RELAYGATE_JWT_SECRET: 's', RELAYGATE_JWKS_URL: 'https://x/jwks' }, 'RELAYGATE_JWT_SECRET'],
    ['an unreadable PEM path', { RELAYGATE_JWT_PUBLIC_KEY: '/nonexistent/key.pem' }, 'RELAYGATE_JWT_PUBLIC_KEY'],
  ])('names the setting for %s', async (_name, env, setting) => {
    const { values } = loadSettings('gateway', env, []);
    const err = await verifierOptionsFrom(values).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe(setting);
    expect((err as ConfigError).message).toContain(setting);
  });

  it('never puts the secret into an error message', async () => {
    const { values } = loadSettings('gateway', { RELAYGATE_JWT_SECRET: 'sup3r-s3cret', RELAYGATE_JWKS_URL: 'https://x/jwks' }, []);
    const err = (await verifierOptionsFrom(values).catch((e: unknown) => e)) as Error;
    expect(err.message).not.toContain('sup3r-s3cret');
  });
});
