// Verifies bearer JWTs with jose and turns them into Principals (spec section 4).
// Keys: an HS256 secret, a PEM public key (RS*/PS*/ES*/EdDSA, detected from the key) or a JWKS URL.
// The algorithm allow-list is explicit and never holds "none"; HS* is never accepted with a public
// key or a JWKS (the algorithm-confusion attack). `exp` and `sub` are required.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { ConfigError, type SettingValues } from '../config.js';
import { Code, GatewayError } from '../errors.js';
import { tenantProblem } from './names.js';
import type { Principal, TokenVerifier } from './principal.js';
import { compileGrants, type IgnoredGrant } from './scopes.js';

export interface VerifierOptions {
  /** HS256 secret (its UTF-8 bytes are the HMAC key). */
  secret?: string | undefined;
  /** PEM text of a public key (SPKI) or certificate. */
  publicKeyPem?: string | undefined;
  jwksUrl?: string | undefined;
  /** Accepted `alg` values; default per key source (see defaultAlgorithms). */
  algorithms?: string[] | undefined;
  audience?: string | undefined;
  issuer?: string | undefined;
  clockToleranceMs: number;
  /** Claim naming the tenant; a token without it lives in tenant "default". */
  tenantClaim: string;
  /** Remote key set tuning (milliseconds). */
  jwks?: { timeoutMs?: number; cooldownMs?: number; cacheMaxAgeMs?: number } | undefined;
  /** Told once per distinct grant that a verified token's scope carried but was ignored as malformed. */
  onIgnoredGrant?: IgnoredGrant | undefined;
}

/** Why a credential was refused; stable strings for logs and metrics. */
export type AuthReason =
  | 'missing' | 'malformed' | 'expired' | 'not_yet_valid' | 'signature' | 'algorithm'
  | 'claims' | 'audience' | 'issuer' | 'subject' | 'tenant';

const reasonMessages: Record<AuthReason, string> = {
  missing: 'no credential given',
  malformed: 'credential is not a well-formed JWT',
  expired: 'credential expired',
  not_yet_valid: 'credential is not valid yet',
  signature: 'credential signature is not valid',
  algorithm: 'credential algorithm is not accepted',
  claims: 'credential claims are not valid',
  audience: 'credential audience is not accepted',
  issuer: 'credential issuer is not accepted',
  subject: 'credential has no valid sub claim',
  tenant: 'credential tenant is not a valid tenant name',
};

/** A refused credential: code UNAUTHENTICATED, a stable `reason`, a message that never echoes the token. */
export class AuthError extends GatewayError {
  readonly reason: AuthReason;

  constructor(reason: AuthReason, options: { message?: string; cause?: unknown } = {}) {
    super(Code.UNAUTHENTICATED, options.message ?? reasonMessages[reason], { cause: options.cause });
    this.name = 'AuthError';
    this.reason = reason;
  }
}

/** The tenant of a token without a tenant claim (spec section 7). */
export const DEFAULT_TENANT = 'default';

/** Longest `sub` accepted; the subject travels in logs and in a header to compute nodes. */
export const MAX_SUBJECT_LENGTH = 1024;
// Control characters have no place in a subject and would break the header it travels in.
const controlChars = /[\u0000-\u001f\u007f]/;

/** Longest token accepted; larger input is refused before any parsing. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const hmacAlgorithms = ['HS256', 'HS384', 'HS512'] as const;
const asymmetricAlgorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
const knownAlgorithms: ReadonlySet<string> = new Set([...hmacAlgorithms, ...asymmetricAlgorithms]);
/** Defaults when RELAYGATE_JWT_ALGORITHMS is unset and the key is a public key or a JWKS. */
const defaultAsymmetric = ['RS256', 'ES256', 'EdDSA', 'Ed25519'];

/** Which algorithms a public key can verify, by its type (and curve). */
function algorithmsForKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    case 'ed25519': return ['EdDSA', 'Ed25519'];
    default: return [];
  }
}

function checkAlgorithmNames(list: readonly string[]): void {
  for (const alg of list) {
    if (alg.toLowerCase() === 'none') throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', '"none" is never accepted');
    if (!knownAlgorithms.has(alg)) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', `unknown algorithm "${alg}" (known: ${[...knownAlgorithms].join(', ')})`);
  }
}

interface KeySource {
  algorithms: string[];
  key: Uint8Array | JWTVerifyGetKey;
}

function secretSource(secret: string, configured: string[] | undefined): KeySource {
  const algorithms = configured ?? ['HS256'];
  const wrong = algorithms.find((a) => !(hmacAlgorithms as readonly string[]).includes(a));
  if (wrong) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', `"${wrong}" cannot be verified with RELAYGATE_JWT_SECRET (use HS256, HS384 or HS512)`);
  return { algorithms, key: new TextEncoder().encode(secret) };
}

async function publicKeySource(pem: string, configured: string[] | undefined): Promise<KeySource> {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', 'holds a private key; give the gateway the public key only');
  }
  // Only the first key of a file would be used; say so rather than ignore the others.
  if ((pem.match(/-----BEGIN (?:RSA )?PUBLIC KEY-----/g) ?? []).length > 1) {
    throw new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', 'holds more than one public key; give one, or publish several in a JWKS (RELAYGATE_JWKS_URL)');
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey(pem);
  } catch (cause) {
    throw Object.assign(new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', 'is not a PEM public key or certificate'), { cause });
  }
  const supported = algorithmsForKey(keyObject);
  if (supported.length === 0) {
    throw new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', `key type ${keyObject.asymmetricKeyType ?? 'unknown'} is not supported (RSA, EC P-256/384/521 or Ed25519)`);
  }
  if (keyObject.asymmetricKeyType === 'rsa' && (keyObject.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', 'RSA keys must have at least 2048 bits');
  }
  let algorithms: string[];
  if (configured) {
    const hmac = configured.find((a) => a.startsWith('HS'));
    if (hmac) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', `"${hmac}" is never accepted with a public key`);
    const unusable = configured.find((a) => !supported.includes(a));
    if (unusable) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', `"${unusable}" does not fit the ${keyObject.asymmetricKeyType} key of RELAYGATE_JWT_PUBLIC_KEY (it supports ${supported.join(', ')})`);
    algorithms = configured;
  } else {
    algorithms = defaultAsymmetric.filter((a) => supported.includes(a));
    if (algorithms.length === 0) algorithms = supported;
  }
  const spki = keyObject.export({ type: 'spki', format: 'pem' }).toString();
  const keys = new Map<string, Awaited<ReturnType<typeof importSPKI>>>();
  for (const alg of algorithms) keys.set(alg, await importSPKI(spki, alg));
  // The allow-list is checked by jose before this runs; the map is a second guard.
  const key: JWTVerifyGetKey = (header) => {
    const found = header.alg === undefined ? undefined : keys.get(header.alg);
    if (!found) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    return found;
  };
  return { algorithms, key };
}

/** Marks a failure to obtain the remote key set, as opposed to a bad token. */
class KeySetUnavailable extends Error {}

function jwksSource(url: string, configured: string[] | undefined, tuning: VerifierOptions['jwks']): KeySource {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('RELAYGATE_JWKS_URL', 'is not a URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new ConfigError('RELAYGATE_JWKS_URL', 'must be an https:// (or http://) URL');
  const algorithms = configured ?? defaultAsymmetric;
  const hmac = algorithms.find((a) => a.startsWith('HS'));
  if (hmac) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', `"${hmac}" is never accepted with a JWKS`);
  const remote = createRemoteJWKSet(parsed, {
    timeoutDuration: tuning?.timeoutMs ?? 5_000,
    cooldownDuration: tuning?.cooldownMs ?? 30_000,
    cacheMaxAge: tuning?.cacheMaxAgeMs ?? 600_000,
  });
  const key: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      // No key for this kid/alg is the token's problem; a failed fetch is the key set's.
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) throw err;
      throw new KeySetUnavailable('JSON Web Key Set unavailable', { cause: err });
    }
  };
  return { algorithms, key };
}

function authErrorFor(err: unknown): GatewayError {
  if (err instanceof KeySetUnavailable) {
    return new GatewayError(Code.UNAVAILABLE, 'credential keys are unavailable; retry shortly', { retryAfterMs: 1_000, cause: err.cause });
  }
  if (err instanceof errors.JWTExpired) return new AuthError('expired', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf': return new AuthError('not_yet_valid', { cause: err });
      case 'aud': return new AuthError('audience', { cause: err });
      case 'iss': return new AuthError('issuer', { cause: err });
      case 'sub': return new AuthError('subject', { cause: err });
      case 'exp':
        return new AuthError('claims', { message: err.reason === 'missing' ? 'credential has no exp claim' : 'credential exp claim is not a number', cause: err });
      default: return new AuthError('claims', { cause: err });
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new AuthError('algorithm', { cause: err });
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('signature', { cause: err });
  }
  return new AuthError('malformed', { cause: err });
}

function scopeOf(payload: JWTPayload): string | undefined {
  const scope = payload.scope;
  if (scope === undefined) return '';
  if (typeof scope === 'string') return scope;
  // Some issuers send the scope as an array of grants.
  if (Array.isArray(scope) && scope.every((g) => typeof g === 'string')) return scope.join(' ');
  return undefined;
}

/** Distinct ignored grants reported at most; beyond this they are no longer reported. */
const MAX_REPORTED_GRANTS = 256;

/** Reports each distinct ignored grant once, so a popular bad token does not flood the logs. */
function reportOnce(report: IgnoredGrant | undefined): IgnoredGrant | undefined {
  if (!report) return undefined;
  const seen = new Set<string>();
  return (grant, problem) => {
    const shown = grant.length > 128 ? `${grant.slice(0, 128)}…` : grant;
    if (seen.has(shown) || seen.size >= MAX_REPORTED_GRANTS) return;
    seen.add(shown);
    report(shown, problem);
  };
}

class JoseVerifier implements TokenVerifier {
  private readonly checks: JWTVerifyOptions;
  private readonly onIgnoredGrant: IgnoredGrant | undefined;

  constructor(private readonly source: KeySource, private readonly opts: VerifierOptions) {
    this.onIgnoredGrant = reportOnce(opts.onIgnoredGrant);
    this.checks = {
      algorithms: source.algorithms,
      requiredClaims: ['exp', 'sub'],
      clockTolerance: opts.clockToleranceMs / 1000,
      ...(opts.audience !== undefined ? { audience: opts.audience } : {}),
      ...(opts.issuer !== undefined ? { issuer: opts.issuer } : {}),
    };
  }

  async verify(token: string): Promise<Principal> {
    if (typeof token !== 'string' || token.length === 0) throw new AuthError('missing');
    if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('malformed', { message: `credential longer than ${MAX_TOKEN_LENGTH} characters` });
    let payload: JWTPayload;
    try {
      const key = this.source.key;
      ({ payload } = typeof key === 'function' ? await jwtVerify(token, key, this.checks) : await jwtVerify(token, key, this.checks));
    } catch (err) {
      throw authErrorFor(err);
    }
    // JSON reads 1e400 as Infinity, which jose lets through as a far-future expiry.
    const expiresAtMs = Math.floor(payload.exp! * 1000);
    if (!Number.isSafeInteger(expiresAtMs)) throw new AuthError('claims', { message: 'credential exp claim is out of range' });
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH || controlChars.test(subject)) {
      throw new AuthError('subject');
    }
    const tenantValue = Object.hasOwn(payload, this.opts.tenantClaim) ? payload[this.opts.tenantClaim] : undefined;
    let tenant = DEFAULT_TENANT;
    if (tenantValue !== undefined) {
      if (typeof tenantValue !== 'string' || tenantProblem(tenantValue) !== undefined) throw new AuthError('tenant');
      tenant = tenantValue;
    }
    const scope = scopeOf(payload);
    if (scope === undefined) throw new AuthError('claims', { message: 'credential scope claim must be a string' });
    return Object.freeze({
      subject,
      tenant,
      grants: compileGrants(scope, subject, this.onIgnoredGrant),
      expiresAtMs,
    });
  }
}

/**
 * A verifier for exactly one key source. Throws ConfigError (naming the setting) when the key
 * material or the algorithm list is unusable, so a misconfigured gateway never starts.
 */
export async function createTokenVerifier(opts: VerifierOptions): Promise<TokenVerifier> {
  const given = [opts.secret, opts.publicKeyPem, opts.jwksUrl].filter((v) => v !== undefined).length;
  if (given !== 1) throw new ConfigError('RELAYGATE_JWT_SECRET', keySourceProblem(given));
  if (opts.algorithms !== undefined) {
    if (opts.algorithms.length === 0) throw new ConfigError('RELAYGATE_JWT_ALGORITHMS', 'must list at least one algorithm');
    checkAlgorithmNames(opts.algorithms);
  }
  if (!Number.isFinite(opts.clockToleranceMs) || opts.clockToleranceMs < 0) throw new ConfigError('RELAYGATE_JWT_CLOCK_TOLERANCE', 'must be a non-negative duration');
  if (opts.tenantClaim.length === 0) throw new ConfigError('RELAYGATE_TENANT_CLAIM', 'must not be empty');
  let source: KeySource;
  if (opts.secret !== undefined) {
    if (opts.secret.length === 0) throw new ConfigError('RELAYGATE_JWT_SECRET', 'must not be empty');
    source = secretSource(opts.secret, opts.algorithms);
  } else if (opts.publicKeyPem !== undefined) source = await publicKeySource(opts.publicKeyPem, opts.algorithms);
  else source = jwksSource(opts.jwksUrl!, opts.algorithms, opts.jwks);
  return new JoseVerifier(source, opts);
}

function keySourceProblem(given: number): string {
  return given === 0
    ? 'no verification key: set one of RELAYGATE_JWT_SECRET, RELAYGATE_JWT_PUBLIC_KEY or RELAYGATE_JWKS_URL'
    : 'set only one of RELAYGATE_JWT_SECRET, RELAYGATE_JWT_PUBLIC_KEY and RELAYGATE_JWKS_URL';
}

/** Verifier options from the settings; reads the PEM file. Exactly one key source must be set. */
export async function verifierOptionsFrom(values: SettingValues): Promise<VerifierOptions> {
  const given = [values.jwtSecret, values.jwtPublicKey, values.jwksUrl].filter((v) => v !== undefined).length;
  if (given !== 1) throw new ConfigError('RELAYGATE_JWT_SECRET', keySourceProblem(given));
  let publicKeyPem: string | undefined;
  if (values.jwtPublicKey !== undefined) {
    try {
      publicKeyPem = await readFile(values.jwtPublicKey, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError('RELAYGATE_JWT_PUBLIC_KEY', `cannot read ${JSON.stringify(values.jwtPublicKey)} (${code})`);
    }
  }
  return {
    secret: values.jwtSecret,
    publicKeyPem,
    jwksUrl: values.jwksUrl,
    algorithms: values.jwtAlgorithms,
    audience: values.jwtAudience,
    issuer: values.jwtIssuer,
    clockToleranceMs: values.jwtClockTolerance,
    tenantClaim: values.tenantClaim,
  };
}
