// `relaygate token`: prints an HS256 JWT for --sub/--scope/--tenant/--ttl.
import { ConfigError, parseDuration, type LoadedSettings } from '../config.js';
import { signToken } from '../auth/token.js';

function stringFlag(flags: Map<string, string | true>, name: string): string | undefined {
  const value = flags.get(name);
  if (value === true) throw new ConfigError(`--${name}`, 'needs a value');
  return value;
}

export async function runTokenCommand({ values, args }: LoadedSettings): Promise<number> {
  for (const name of args.flags.keys()) {
    if (!['sub', 'scope', 'tenant', 'ttl'].includes(name)) throw new ConfigError(`--${name}`, 'unknown flag for token');
  }
  const secret = values.jwtSecret;
  if (!secret) throw new ConfigError('RELAYGATE_JWT_SECRET', 'must be set to sign a token');
  const sub = stringFlag(args.flags, 'sub');
  if (!sub) throw new ConfigError('--sub', 'is required');
  const ttlText = stringFlag(args.flags, 'ttl') ?? '1h';
  const ttlMs = parseDuration(ttlText);
  if (ttlMs === undefined || ttlMs <= 0) throw new ConfigError('--ttl', `must be a duration such as 30m or 1h (got ${JSON.stringify(ttlText)})`);
  const token = await signToken({
    secret,
    sub,
    scope: stringFlag(args.flags, 'scope') ?? '',
    tenant: stringFlag(args.flags, 'tenant'),
    tenantClaim: values.tenantClaim,
    ttlMs,
    audience: values.jwtAudience,
    issuer: values.jwtIssuer,
  });
  process.stdout.write(`${token}\n`);
  return 0;
}
