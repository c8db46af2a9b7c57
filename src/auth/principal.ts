// Who a verified credential names, and what it may do. Produced by auth/, read by router/.

/** A compiled `scope` claim; see auth/scopes.ts for the grammar. */
export interface Grants {
  /** Whether `action` on `name` (a function name, or a topic within the principal's tenant) is granted. */
  allows(action: 'invoke' | 'subscribe' | 'publish', name: string): boolean;
}

/** A verified token's subject, tenant, grants and expiry. Immutable; a Refresh replaces it whole. */
export interface Principal {
  readonly subject: string;
  /** The tenant claim's value, or "default" (spec section 7). */
  readonly tenant: string;
  readonly grants: Grants;
  /** `exp` in epoch milliseconds. */
  readonly expiresAtMs: number;
}

/** Verifies a bearer token (JWT); rejects with GatewayError UNAUTHENTICATED and a short reason. */
export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}
