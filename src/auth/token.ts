// Signs HS256 tokens the gateway's verifier accepts: for `relaygate token`, `relaygate dev` and tests.
import { SignJWT } from 'jose';
import { tenantProblem } from './names.js';

export interface TokenOptions {
  secret: string;
  sub: string;
  /** Space-delimited grants, see auth/scopes.ts. */
  scope: string;
  tenant?: string | undefined;
  /** Claim that carries the tenant; default "tenant". */
  tenantClaim?: string | undefined;
  ttlMs: number;
  audience?: string | undefined;
  issuer?: string | undefined;
}

// Claims the token sets itself; a tenant claim of the same name would overwrite them.
const reservedClaims = new Set(['sub', 'scope', 'exp', 'iat', 'nbf', 'aud', 'iss', 'jti']);

/** An HS256 JWT with sub, scope, iat, exp (now + ttlMs) and, when given, tenant, aud and iss. */
export async function signToken(o: TokenOptions): Promise<string> {
  if (o.secret.length === 0) throw new RangeError('the signing secret is empty');
  if (o.sub.length === 0) throw new RangeError('the subject is empty');
  if (!Number.isFinite(o.ttlMs) || o.ttlMs <= 0) throw new RangeError('the lifetime must be positive');
  const claims: Record<string, unknown> = { scope: o.scope };
  if (o.tenant !== undefined) {
    const problem = tenantProblem(o.tenant);
    if (problem) throw new RangeError(problem);
    const claim = o.tenantClaim ?? 'tenant';
    if (reservedClaims.has(claim)) throw new RangeError(`the tenant claim cannot be "${claim}"`);
    claims[claim] = o.tenant;
  }
  const nowSec = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(o.sub)
    .setIssuedAt(nowSec)
    .setExpirationTime(nowSec + Math.max(1, Math.ceil(o.ttlMs / 1000)));
  if (o.audience !== undefined) jwt = jwt.setAudience(o.audience);
  if (o.issuer !== undefined) jwt = jwt.setIssuer(o.issuer);
  return jwt.sign(new TextEncoder().encode(o.secret));
}
