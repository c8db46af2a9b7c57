// Recently verified bearer tokens, so that a token seen again (reconnects, many connections or
// HTTP requests sharing one token) is accepted without another signature check. Pure.
import { createHash } from 'node:crypto';
import type { Principal } from '../auth/principal.js';

/** Default number of tokens remembered. */
export const CREDENTIAL_CACHE_SIZE = 10_000;
/**
 * Default time a verification is trusted. Short, so that a key withdrawn from a JWKS stops
 * admitting its tokens within a minute; a token's own `exp` always applies as well.
 */
export const CREDENTIAL_CACHE_TTL_MS = 60_000;

interface Entry {
  readonly principal: Principal;
  readonly trustedUntilMs: number;
}

/** Least-recently-used map from token to the Principal it verified to, bounded in size and time. */
export class CredentialCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxSize = CREDENTIAL_CACHE_SIZE, private readonly ttlMs = CREDENTIAL_CACHE_TTL_MS) {}

  /** The Principal `token` verified to, if it was verified within the TTL and has not expired. */
  get(token: string, nowMs: number): Principal | undefined {
    const key = keyOf(token);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (nowMs >= entry.trustedUntilMs || nowMs >= entry.principal.expiresAtMs) return undefined;
    this.entries.set(key, entry); // most recently used last
    return entry.principal;
  }

  /** Remembers a successful verification. */
  set(token: string, principal: Principal, nowMs: number): void {
    const key = keyOf(token);
    this.entries.delete(key);
    this.entries.set(key, { principal, trustedUntilMs: nowMs + this.ttlMs });
    if (this.entries.size > this.maxSize) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Tokens remembered. */
  get size(): number {
    return this.entries.size;
  }
}

// Tokens may be kilobytes long; the cache keeps a fixed-size digest of each instead.
function keyOf(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}
