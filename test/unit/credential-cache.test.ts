// The credential cache: bounded in size, trusted for a while, never past a token's exp.
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { CredentialCache } from '../../src/transport/credential-cache.js';

const principal = (expiresAtMs: number, subject = 'alice'): Principal => ({
  subject, tenant: 'default', expiresAtMs, grants: { allows: () => true },
});

describe('CredentialCache', () => {
  it('returns what was verified, within the TTL', () => {
    const cache = new CredentialCache(10, 1000);
    const p = principal(1_000_000);
    cache.set('t', p, 0);
    expect(cache.get('t', 999)).toBe(p);
    expect(cache.get('t', 1000)).toBeUndefined();
    expect(cache.get('t', 0)).toBeUndefined(); // dropped once stale
  });

  it('never returns a principal at or past its expiry', () => {
    const cache = new CredentialCache(10, 60_000);
    cache.set('t', principal(500), 0);
    expect(cache.get('t', 499)).toBeDefined();
    expect(cache.get('t', 500)).toBeUndefined();
  });

  it('forgets the least recently used token beyond its size', () => {
    const cache = new CredentialCache(2, 60_000);
    cache.set('a', principal(1e9, 'a'), 0);
    cache.set('b', principal(1e9, 'b'), 0);
    expect(cache.get('a', 1)?.subject).toBe('a'); // a is now the most recent
    cache.set('c', principal(1e9, 'c'), 1);
    expect(cache.size).toBe(2);
    expect(cache.get('b', 2)).toBeUndefined();
    expect(cache.get('a', 2)?.subject).toBe('a');
    expect(cache.get('c', 2)?.subject).toBe('c');
  });

  it('unknown tokens miss', () => {
    expect(new CredentialCache().get('nope', 0)).toBeUndefined();
  });
});
