// The per-connection limit state machines and request checks, table-driven.
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { compileGrants } from '../../src/auth/scopes.js';
import { Code, GatewayError } from '../../src/errors.js';
import { StrikeWindow, TokenBucket } from '../../src/router/limits.js';
import { checkInvokeGrant, checkJobTopic, checkMetadata, checkTopicGrant, invokeDeadline, MAX_METADATA_ENTRIES } from '../../src/router/requests.js';
import { chooseSubprotocol, originAllowed, readCredential } from '../../src/transport/handshake.js';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the rate, never above the burst', () => {
    const bucket = new TokenBucket(10, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([0, 0, 0]);
    expect(bucket.take(0)).toBe(100); // one token every 100 ms
    expect(bucket.take(50)).toBe(50);
    expect(bucket.take(100)).toBe(0);
    // A long pause refills to the burst only.
    for (let i = 0; i < 3; i++) expect(bucket.take(100_000)).toBe(0);
    expect(bucket.take(100_000)).toBeGreaterThan(0);
  });

  it('a refused take costs nothing', () => {
    const bucket = new TokenBucket(1, 1, 0);
    expect(bucket.take(0)).toBe(0);
    for (let i = 0; i < 5; i++) expect(bucket.take(0)).toBe(1000);
    expect(bucket.take(1000)).toBe(0);
  });

  it('does not refill when the clock goes backwards', () => {
    const bucket = new TokenBucket(1000, 1, 1000);
    expect(bucket.take(1000)).toBe(0);
    expect(bucket.take(500)).toBeGreaterThan(0);
  });
});

describe('StrikeWindow', () => {
  it('reports the limit reached only when that many strikes fall within the window', () => {
    const w = new StrikeWindow(3, 1000);
    expect(w.strike(0)).toBe(false);
    expect(w.strike(500)).toBe(false);
    expect(w.strike(1200)).toBe(false); // the strike at 0 fell out
    expect(w.strike(1400)).toBe(true);
  });

  it('a limit of one trips at once', () => {
    expect(new StrikeWindow(1, 10).strike(0)).toBe(true);
  });
});

describe('handshake', () => {
  it.each([
    ['relaygate.v1.proto', 'proto'],
    ['relaygate.v1.json', 'json'],
    ['mqtt, relaygate.v1.json', 'json'],
    ['relaygate.v1.json,relaygate.v1.proto', 'json'],
    ['  relaygate.v1.proto  ', 'proto'],
    ['', undefined],
    ['relaygate.v1', undefined],
    ['Relaygate.v1.proto', undefined],
    ['relaygate.v1.protobuf', undefined],
  ])('subprotocol %j -> %s', (header, chosen) => {
    expect(chooseSubprotocol(header)).toBe(chosen);
  });

  it.each([
    ['Bearer abc.def.ghi', '', { token: 'abc.def.ghi' }],
    ['bearer abc', '', { token: 'abc' }],
    ['Bearer  abc ', '', { token: 'abc' }],
    ['', 'abc', { token: 'abc' }],
    ['Bearer abc', 'other', { token: 'abc' }],
    ['', '', { problem: 'missing' }],
    ['Basic dXNlcjpwYXNz', '', { problem: 'malformed' }],
    ['Bearer', '', { problem: 'malformed' }],
    ['Bearer a b', '', { problem: 'malformed' }],
    ['', 'a b', { problem: 'malformed' }],
  ])('credential from %j and query %j', (authorization, query, expected) => {
    expect(readCredential(authorization, query)).toEqual(expected);
  });

  it('origin: exact match only; no Origin header passes; no list allows all', () => {
    const list = new Set(['https://app.example.com', 'http://localhost:3000']);
    expect(originAllowed('https://app.example.com', list)).toBe(true);
    expect(originAllowed('', list)).toBe(true);
    expect(originAllowed('https://app.example.com:443', list)).toBe(false);
    expect(originAllowed('https://APP.example.com', list)).toBe(false);
    expect(originAllowed('http://localhost:3001', list)).toBe(false);
    expect(originAllowed('null', list)).toBe(false);
    expect(originAllowed('https://anything', undefined)).toBe(true);
  });
});

describe('request checks', () => {
  const principal: Principal = {
    subject: 'alice', tenant: 'default', expiresAtMs: Date.now() + 60_000,
    grants: compileGrants('invoke:sha256 invoke:img.resize subscribe:users/{sub}/** publish:jobs/*', 'alice'),
  };
  const code = (fn: () => void): number | undefined => {
    try {
      fn();
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      return (err as GatewayError).code;
    }
  };

  it.each([
    ['sha256', undefined],
    ['img.resize', undefined],
    ['md5', Code.PERMISSION_DENIED],
    ['', Code.INVALID_ARGUMENT],
    ['a/b', Code.INVALID_ARGUMENT],
    ['x'.repeat(129), Code.INVALID_ARGUMENT],
  ])('invoke %j -> %s', (fn, expected) => {
    expect(code(() => checkInvokeGrant(principal, fn))).toBe(expected);
  });

  it.each([
    ['subscribe', 'users/alice/inbox', undefined],
    ['subscribe', 'users/bob/inbox', Code.PERMISSION_DENIED],
    ['subscribe', 'users/alice/../bob', Code.INVALID_ARGUMENT],
    ['subscribe', 'users/*/inbox', Code.INVALID_ARGUMENT],
    ['publish', 'jobs/1', undefined],
    ['publish', 'jobs/1/2', Code.PERMISSION_DENIED],
  ] as const)('%s %j -> %s', (action, topic, expected) => {
    expect(code(() => checkTopicGrant(principal, action, topic))).toBe(expected);
  });

  it('a job topic needs a publish grant', () => {
    expect(code(() => checkJobTopic(principal, 'jobs/9'))).toBeUndefined();
    expect(code(() => checkJobTopic(principal, 'users/alice/jobs'))).toBe(Code.PERMISSION_DENIED);
  });

  it.each([
    [{ trace: 'abc-123', 'x_y': 'v w' }, undefined],
    [{ '': 'v' }, Code.INVALID_ARGUMENT],
    [{ 'bad key': 'v' }, Code.INVALID_ARGUMENT],
    [{ 'k:': 'v' }, Code.INVALID_ARGUMENT],
    [{ k: 'a\r\nx-injected: 1' }, Code.INVALID_ARGUMENT],
    [{ k: 'nul\u0000' }, Code.INVALID_ARGUMENT],
    [{ k: 'é' }, Code.INVALID_ARGUMENT],
    [{ k: 'v'.repeat(4097) }, Code.INVALID_ARGUMENT],
    [{ ['k'.repeat(65)]: 'v' }, Code.INVALID_ARGUMENT],
    [Object.fromEntries(Array.from({ length: MAX_METADATA_ENTRIES + 1 }, (_, i) => [`k${i}`, 'v'])), Code.INVALID_ARGUMENT],
  ])('metadata %#', (metadata, expected) => {
    expect(code(() => checkMetadata(metadata))).toBe(expected);
  });

  it('deadline: 0 means the default, everything is capped', () => {
    expect(invokeDeadline(1000, 0, 30_000, 60_000)).toBe(31_000);
    expect(invokeDeadline(1000, 500, 30_000, 60_000)).toBe(1500);
    expect(invokeDeadline(1000, 4_000_000_000, 30_000, 60_000)).toBe(61_000);
    expect(invokeDeadline(1000, 0, 90_000, 60_000)).toBe(61_000);
  });
});
