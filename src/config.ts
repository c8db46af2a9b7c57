// One table of RELAYGATE_* settings: typed, documented, defaulted, validated at start, frozen.
// Pure: reads only the env and argv it is given, so it is unit-tested in depth.

export type SettingType = 'string' | 'int' | 'float' | 'bool' | 'duration' | 'bytes' | 'list';

/** Which commands read a setting; `--help` of a command lists exactly these. */
export type Command = 'gateway' | 'node' | 'dev' | 'token' | 'call' | 'sub' | 'pub';

interface SettingSpec {
  readonly key: keyof SettingValues;
  readonly env: string;
  readonly type: SettingType;
  readonly doc: string;
  /** Textual default as a user would write it; undefined = unset. */
  readonly default?: string;
  readonly min?: number;
  readonly max?: number;
  readonly commands: readonly Command[];
  /** A secret: its value is never printed. */
  readonly secret?: boolean;
}

/** Every setting's parsed value. Durations are milliseconds, sizes bytes. */
export interface SettingValues {
  host: string;
  port: number | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsPassphrase: string | undefined;
  jwtSecret: string | undefined;
  jwtPublicKey: string | undefined;
  jwksUrl: string | undefined;
  jwtAlgorithms: string[] | undefined;
  jwtAudience: string | undefined;
  jwtIssuer: string | undefined;
  jwtClockTolerance: number;
  tenantClaim: string;
  origins: string[] | undefined;
  gatewayId: string | undefined;
  maxFrameBytes: number;
  maxInFlight: number;
  maxSubscriptions: number;
  idleTimeout: number;
  maxBackpressure: number;
  rateLimit: number;
  rateBurst: number;
  rateStrikes: number;
  violationLimit: number;
  violationWindow: number;
  permessageDeflate: boolean;
  allowUwsFallback: boolean;
  drainGrace: number;
  closeSpread: number;
  logLevel: string;
  stateDir: string;

  redisUrl: string | undefined;
  redisCluster: boolean;
  redisPrefix: string;
  history: string[] | undefined;
  jobHistory: string;
  busHeartbeat: number;
  busProbe: number;

  nodes: string[] | undefined;
  invokeTimeout: number;
  invokeMaxTimeout: number;
  nodeMaxInFlight: number;
  queueSize: number;
  slowStart: number;
  healthInterval: number;
  healthFall: number;
  healthRise: number;
  ejectAfter: number;
  ejectBase: number;
  ejectMax: number;
  retryBudget: number;
  nodeConnections: number;
  registryHeartbeat: number;

  nodeId: string | undefined;
  nodeUrl: string | undefined;
  nodeWeight: number;
  nodeLinkPort: number | undefined;
  nodeMaxConcurrency: number;

  url: string | undefined;
  token: string | undefined;
  ca: string | undefined;
}

const GATEWAY: readonly Command[] = ['gateway', 'dev'];
const SERVERS: readonly Command[] = ['gateway', 'node', 'dev'];
const CLIENTS: readonly Command[] = ['call', 'sub', 'pub'];

/** The table. Order is the order `--help` prints. */
export const settingsTable: readonly SettingSpec[] = [
  // Listening and TLS
  { key: 'host', env: 'RELAYGATE_HOST', type: 'string', default: '0.0.0.0', doc: 'listen address (dev: 127.0.0.1)', commands: SERVERS },
  { key: 'port', env: 'RELAYGATE_PORT', type: 'int', min: 0, max: 65535, doc: 'listen port; gateway default 8443 with TLS, 8080 without; node default 9001', commands: SERVERS },
  { key: 'tlsCert', env: 'RELAYGATE_TLS_CERT', type: 'string', doc: 'PEM certificate file; TLS is on when cert and key are both set', commands: SERVERS },
  { key: 'tlsKey', env: 'RELAYGATE_TLS_KEY', type: 'string', doc: 'PEM private key file', commands: SERVERS },
  { key: 'tlsPassphrase', env: 'RELAYGATE_TLS_PASSPHRASE', type: 'string', secret: true, doc: 'passphrase of the TLS key', commands: SERVERS },

  // Credentials
  { key: 'jwtSecret', env: 'RELAYGATE_JWT_SECRET', type: 'string', secret: true, doc: 'HS256 verification secret (also signs `relaygate token`)', commands: ['gateway', 'dev', 'token'] },
  { key: 'jwtPublicKey', env: 'RELAYGATE_JWT_PUBLIC_KEY', type: 'string', doc: 'path of a PEM public key (RS256, ES256 or EdDSA)', commands: GATEWAY },
  { key: 'jwksUrl', env: 'RELAYGATE_JWKS_URL', type: 'string', doc: 'JWKS URL, fetched and cached by the gateway', commands: GATEWAY },
  { key: 'jwtAlgorithms', env: 'RELAYGATE_JWT_ALGORITHMS', type: 'list', doc: 'accepted JWT algorithms; default HS256 with a secret, RS256,ES256,EdDSA with a public key or JWKS ("none" is never accepted)', commands: GATEWAY },
  { key: 'jwtAudience', env: 'RELAYGATE_JWT_AUDIENCE', type: 'string', doc: 'required `aud`, checked when set', commands: ['gateway', 'dev', 'token'] },
  { key: 'jwtIssuer', env: 'RELAYGATE_JWT_ISSUER', type: 'string', doc: 'required `iss`, checked when set', commands: ['gateway', 'dev', 'token'] },
  { key: 'jwtClockTolerance', env: 'RELAYGATE_JWT_CLOCK_TOLERANCE', type: 'duration', default: '5s', min: 0, max: 300_000, doc: 'clock skew allowed on exp/nbf', commands: GATEWAY },
  { key: 'tenantClaim', env: 'RELAYGATE_TENANT_CLAIM', type: 'string', default: 'tenant', doc: 'JWT claim naming the tenant; a token without it lives in tenant "default"', commands: ['gateway', 'dev', 'token'] },
  { key: 'origins', env: 'RELAYGATE_ORIGINS', type: 'list', doc: 'Origin allow-list (exact scheme://host:port); unset = any', commands: GATEWAY },

  // Connections
  { key: 'gatewayId', env: 'RELAYGATE_GATEWAY_ID', type: 'string', doc: 'this instance\'s id in Welcome; default host-pid-random', commands: GATEWAY },
  { key: 'maxFrameBytes', env: 'RELAYGATE_MAX_FRAME_BYTES', type: 'bytes', default: '1048576', min: 64, max: 64 * 1024 * 1024, doc: 'largest client frame; larger closes with 1009', commands: GATEWAY },
  { key: 'maxInFlight', env: 'RELAYGATE_MAX_IN_FLIGHT', type: 'int', default: '256', min: 1, max: 1_000_000, doc: 'requests in flight per connection', commands: GATEWAY },
  { key: 'maxSubscriptions', env: 'RELAYGATE_MAX_SUBSCRIPTIONS', type: 'int', default: '1024', min: 1, max: 1_000_000, doc: 'topics one connection may subscribe to at once; beyond it Subscribe gets RESOURCE_EXHAUSTED', commands: GATEWAY },
  { key: 'idleTimeout', env: 'RELAYGATE_IDLE_TIMEOUT', type: 'duration', default: '60s', min: 8_000, max: 960_000, doc: 'close a connection silent this long (WebSocket pings are sent before)', commands: GATEWAY },
  { key: 'maxBackpressure', env: 'RELAYGATE_MAX_BACKPRESSURE', type: 'bytes', default: '4mb', min: 1024, max: 1024 * 1024 * 1024, doc: 'send buffer per connection; over it the connection closes with 4008', commands: GATEWAY },
  { key: 'rateLimit', env: 'RELAYGATE_RATE_LIMIT', type: 'float', default: '2000', min: 0.01, doc: 'frames per second per connection (token bucket refill)', commands: GATEWAY },
  { key: 'rateBurst', env: 'RELAYGATE_RATE_BURST', type: 'int', default: '4000', min: 1, doc: 'token bucket size', commands: GATEWAY },
  { key: 'rateStrikes', env: 'RELAYGATE_RATE_STRIKES', type: 'int', default: '50', min: 1, doc: 'rate-limited frames within violation-window before close 4029', commands: GATEWAY },
  { key: 'violationLimit', env: 'RELAYGATE_VIOLATION_LIMIT', type: 'int', default: '5', min: 1, doc: 'protocol violations within violation-window before close 4400', commands: GATEWAY },
  { key: 'violationWindow', env: 'RELAYGATE_VIOLATION_WINDOW', type: 'duration', default: '60s', min: 1, doc: 'window for violation and rate-limit strikes', commands: GATEWAY },
  { key: 'permessageDeflate', env: 'RELAYGATE_PERMESSAGE_DEFLATE', type: 'bool', default: 'false', doc: 'offer permessage-deflate (costs CPU and memory per connection)', commands: GATEWAY },
  { key: 'allowUwsFallback', env: 'RELAYGATE_ALLOW_UWS_FALLBACK', type: 'bool', default: 'false', doc: 'run even when the uWebSockets.js native binary did not load (slow ws fallback)', commands: GATEWAY },
  { key: 'drainGrace', env: 'RELAYGATE_DRAIN_GRACE', type: 'duration', default: '10s', min: 0, doc: 'on SIGTERM, time in-flight work gets to finish', commands: SERVERS },
  { key: 'closeSpread', env: 'RELAYGATE_CLOSE_SPREAD', type: 'duration', default: '1s', min: 0, doc: 'on drain, window over which connections are closed with 1001', commands: GATEWAY },
  { key: 'logLevel', env: 'RELAYGATE_LOG_LEVEL', type: 'string', default: 'info', doc: 'trace|debug|info|warn|error|fatal|silent', commands: SERVERS },
  { key: 'stateDir', env: 'RELAYGATE_STATE_DIR', type: 'string', default: '.relaygate', doc: 'dev: where the self-signed certificate and dev secret are kept', commands: ['dev'] },

  // Bus
  { key: 'redisUrl', env: 'RELAYGATE_REDIS_URL', type: 'string', doc: 'redis://... (or comma list of cluster seeds); unset = in-process bus', commands: SERVERS },
  { key: 'redisCluster', env: 'RELAYGATE_REDIS_CLUSTER', type: 'bool', default: 'false', doc: 'treat RELAYGATE_REDIS_URL as Redis Cluster seeds (sharded pub/sub)', commands: SERVERS },
  { key: 'redisPrefix', env: 'RELAYGATE_REDIS_PREFIX', type: 'string', default: 'relaygate', doc: 'prefix of Redis channels and keys (channel = prefix:tenant:topic)', commands: SERVERS },
  { key: 'history', env: 'RELAYGATE_HISTORY', type: 'list', doc: 'topics that keep history: pattern=size:ttl, e.g. resources/**=1000:1h', commands: GATEWAY },
  { key: 'jobHistory', env: 'RELAYGATE_JOB_HISTORY', type: 'string', default: '64:10m', doc: 'history size:ttl of job topics (Invoke.job_topic)', commands: GATEWAY },
  { key: 'busHeartbeat', env: 'RELAYGATE_BUS_HEARTBEAT', type: 'duration', default: '1s', min: 50, doc: 'ping interval on the Redis subscriber link (half-open detection)', commands: GATEWAY },
  { key: 'busProbe', env: 'RELAYGATE_BUS_PROBE', type: 'duration', default: '5s', min: 50, doc: 'end-to-end delivery probe interval; readiness depends on it', commands: GATEWAY },

  // Compute
  { key: 'nodes', env: 'RELAYGATE_NODES', type: 'list', doc: 'node base URLs, each optionally ?weight=N (http:// or relaygate+tcp://)', commands: GATEWAY },
  { key: 'invokeTimeout', env: 'RELAYGATE_INVOKE_TIMEOUT', type: 'duration', default: '30s', min: 1, doc: 'deadline of an Invoke with timeout_ms 0', commands: GATEWAY },
  { key: 'invokeMaxTimeout', env: 'RELAYGATE_INVOKE_MAX_TIMEOUT', type: 'duration', default: '15m', min: 1, doc: 'cap on any Invoke deadline', commands: GATEWAY },
  { key: 'nodeMaxInFlight', env: 'RELAYGATE_NODE_MAX_IN_FLIGHT', type: 'int', default: '512', min: 1, doc: 'requests in flight per node per gateway; beyond it requests queue', commands: GATEWAY },
  { key: 'queueSize', env: 'RELAYGATE_QUEUE_SIZE', type: 'int', default: '4096', min: 0, doc: 'requests waiting when every eligible node is full; overflow gets RESOURCE_EXHAUSTED', commands: GATEWAY },
  { key: 'slowStart', env: 'RELAYGATE_SLOW_START', type: 'duration', default: '10s', min: 0, doc: 'a joined or readmitted node ramps its weight over this window', commands: GATEWAY },
  { key: 'healthInterval', env: 'RELAYGATE_HEALTH_INTERVAL', type: 'duration', default: '2s', min: 10, doc: 'active GET /healthz interval per node', commands: GATEWAY },
  { key: 'healthFall', env: 'RELAYGATE_HEALTH_FALL', type: 'int', default: '3', min: 1, doc: 'failed checks before a node is unhealthy', commands: GATEWAY },
  { key: 'healthRise', env: 'RELAYGATE_HEALTH_RISE', type: 'int', default: '2', min: 1, doc: 'passing checks before it is healthy again', commands: GATEWAY },
  { key: 'ejectAfter', env: 'RELAYGATE_EJECT_AFTER', type: 'int', default: '5', min: 1, doc: 'consecutive connect errors or 5xx that eject a node', commands: GATEWAY },
  { key: 'ejectBase', env: 'RELAYGATE_EJECT_BASE', type: 'duration', default: '5s', min: 1, doc: 'ejection time; multiplied by ejections in a row', commands: GATEWAY },
  { key: 'ejectMax', env: 'RELAYGATE_EJECT_MAX', type: 'duration', default: '60s', min: 1, doc: 'longest ejection', commands: GATEWAY },
  { key: 'retryBudget', env: 'RELAYGATE_RETRY_BUDGET', type: 'float', default: '0.2', min: 0, max: 1, doc: 'retries allowed as a share of in-flight requests (at least 3)', commands: GATEWAY },
  { key: 'nodeConnections', env: 'RELAYGATE_NODE_CONNECTIONS', type: 'int', default: '100', min: 1, doc: 'keep-alive HTTP connections per node (binary link: 4)', commands: GATEWAY },
  { key: 'registryHeartbeat', env: 'RELAYGATE_REGISTRY_HEARTBEAT', type: 'duration', default: '2s', min: 100, doc: 'node registration heartbeat in Redis; a node silent for two periods is gone', commands: SERVERS },

  // Reference node
  { key: 'nodeId', env: 'RELAYGATE_NODE_ID', type: 'string', doc: 'node: its id (x-relaygate-node-id); default host-port', commands: ['node'] },
  { key: 'nodeUrl', env: 'RELAYGATE_NODE_URL', type: 'string', doc: 'node: URL gateways use to reach it (registered in Redis when set)', commands: ['node'] },
  { key: 'nodeWeight', env: 'RELAYGATE_NODE_WEIGHT', type: 'float', default: '1', min: 0.01, max: 1000, doc: 'node: weight it registers with', commands: ['node'] },
  { key: 'nodeLinkPort', env: 'RELAYGATE_NODE_LINK_PORT', type: 'int', min: 0, max: 65535, doc: 'node: port of the binary link (relaygate+tcp://); unset = HTTP only', commands: ['node'] },
  { key: 'nodeMaxConcurrency', env: 'RELAYGATE_NODE_MAX_CONCURRENCY', type: 'int', default: '1024', min: 1, doc: 'node: requests it runs at once; beyond it answers 429', commands: ['node'] },

  // Command-line clients
  { key: 'url', env: 'RELAYGATE_URL', type: 'string', doc: 'gateway WebSocket URL for call/sub/pub (default wss://127.0.0.1:8443/v1/ws)', commands: CLIENTS },
  { key: 'token', env: 'RELAYGATE_TOKEN', type: 'string', secret: true, doc: 'JWT for call/sub/pub', commands: CLIENTS },
  { key: 'ca', env: 'RELAYGATE_CA', type: 'string', doc: 'PEM file of the CA (or self-signed certificate) call/sub/pub trust; --insecure skips verification instead', commands: CLIENTS },
];

/** A setting the process cannot use. `message` is the one line printed before exiting non-zero. */
export class ConfigError extends Error {
  constructor(readonly setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.name = 'ConfigError';
  }
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const byteUnits: Record<string, number> = { '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** Parses "250ms", "10s", "5m", "1h", "2d"; a bare number is milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * durationUnits[match[2] ?? 'ms']!);
}

/** Parses "1048576", "64kb", "4mb", "1gib". */
export function parseBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = byteUnits[match[2]!.toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}

function parseValue(spec: SettingSpec, raw: string): unknown {
  const fail = (what: string): never => { throw new ConfigError(spec.env, `${what} (got ${spec.secret ? 'a secret value' : JSON.stringify(raw)})`); };
  const checkRange = (n: number, unit = ''): number => {
    if (spec.min !== undefined && n < spec.min) fail(`must be at least ${spec.min}${unit}`);
    if (spec.max !== undefined && n > spec.max) fail(`must be at most ${spec.max}${unit}`);
    return n;
  };
  switch (spec.type) {
    case 'string':
      if (raw.trim() === '') fail('must not be empty');
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) fail('must be a whole number');
      return checkRange(Number(raw));
    }
    case 'float': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) fail('must be a number');
      return checkRange(n);
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return fail('must be true or false');
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) fail('must be a duration such as 500ms, 10s, 5m or 1h');
      return checkRange(ms!, 'ms');
    }
    case 'bytes': {
      const n = parseBytes(raw);
      if (n === undefined) fail('must be a size such as 65536, 64kb or 4mb');
      return checkRange(n!, ' bytes');
    }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      if (items.length === 0) fail('must list at least one item');
      return items;
    }
  }
}

function flagName(env: string): string {
  return env.replace(/^RELAYGATE_/, '').toLowerCase().replaceAll('_', '-');
}

export interface ParsedArgs {
  /** Positional arguments after the command. */
  positional: string[];
  /** Flags that are not settings (e.g. --sub for `token`), by name without dashes. */
  flags: Map<string, string | true>;
}

export interface LoadedSettings {
  readonly values: Readonly<SettingValues>;
  readonly args: ParsedArgs;
  /** Unknown RELAYGATE_* variables: reported as warnings, not errors. */
  readonly warnings: readonly string[];
}

/**
 * Builds the frozen settings of `command` from the environment and argv (after the command
 * word). A flag `--port 9000` or `--port=9000` overrides RELAYGATE_PORT. Throws ConfigError on
 * the first bad value. `booleanFlags` lists command flags that take no value.
 */
export function loadSettings(
  command: Command,
  env: Readonly<Record<string, string | undefined>>,
  argv: readonly string[],
  booleanFlags: readonly string[] = [],
): LoadedSettings {
  const byFlag = new Map(settingsTable.map((s) => [flagName(s.env), s]));
  const byEnv = new Map(settingsTable.map((s) => [s.env, s]));
  const overrides = new Map<string, string>();
  const args: ParsedArgs = { positional: [], flags: new Map() };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') {
      args.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const setting = byFlag.get(name);
    const takesValue = setting ? setting.type !== 'bool' : !booleanFlags.includes(name);
    let value: string | true;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (!takesValue) value = true;
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`--${name}`, 'needs a value');
      value = next;
      i++;
    }
    if (setting) overrides.set(setting.env, value === true ? 'true' : value);
    else args.flags.set(name, value);
  }

  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (name.startsWith('RELAYGATE_') && !byEnv.has(name)) warnings.push(`${name}: unknown setting, ignored`);
  }

  const values: Record<string, unknown> = {};
  for (const spec of settingsTable) {
    const raw = overrides.get(spec.env) ?? env[spec.env] ?? spec.default;
    values[spec.key] = raw === undefined ? undefined : parseValue(spec, raw);
  }
  if (command === 'dev' && overrides.get('RELAYGATE_HOST') === undefined && env.RELAYGATE_HOST === undefined) values.host = '127.0.0.1';
  return { values: Object.freeze(values as unknown as SettingValues), args, warnings };
}

/** The `--help` text of a command: every setting it reads, with its default. */
export function settingsHelp(command: Command): string {
  const rows = settingsTable.filter((s) => s.commands.includes(command));
  const width = Math.max(...rows.map((s) => s.env.length)) + 2;
  return rows
    .map((s) => `  ${s.env.padEnd(width)}--${flagName(s.env)}${s.default !== undefined ? ` (default ${s.default})` : ''}\n      ${s.doc}`)
    .join('\n');
}

/** The README's settings table (markdown), generated from this table so the two cannot drift. */
export function settingsMarkdown(): string {
  const rows = settingsTable.map((s) => {
    const flag = `--${flagName(s.env)}`;
    const def = s.default !== undefined ? `\`${s.default}\`` : '';
    return `| \`${s.env}\` | \`${flag}\` | ${def} | ${s.doc.replaceAll('|', '\\|')} | ${s.commands.join(', ')} |`;
  });
  return ['| variable | flag | default | meaning | commands |', '|---|---|---|---|---|', ...rows].join('\n');
}
