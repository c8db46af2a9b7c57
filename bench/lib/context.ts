// What every scenario gets: its parameters (from BENCH_* variables, with full and tiny scales),
// tokens, the commands that start our processes, and the machine description for the report.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { projectRoot, startNodeServer, type Server, type StartOptions } from './procs.js';

export type Scale = 'full' | 'tiny';

/** Every parameter of a run; each is printed in the report. */
export interface Params {
  scale: Scale;
  warmupSec: number;
  durationSec: number;
  /** Interleaved rounds per comparison; each case reports its median round. */
  rounds: number;
  /** ws-invoke: connections × in-flight per connection. */
  connections: number;
  window: number;
  clientWorkers: number;
  payloadSmall: number;
  payloadLarge: number;
  cpuFunction: string;
  cpuPayload: string;
  httpConnections: number;
  subscribers: number[];
  publishWindow: number;
  maxLag: number;
  fanoutPayload: number;
  connectionSteps: number[];
  socketIoConnectionMax: number;
  profile: boolean;
  /** Only these systems run (relaygate, link, direct, socket.io, pipe, uws); empty = all. */
  systems: string[];
}

function num(name: string, full: number, tiny: number, scale: Scale): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return scale === 'tiny' ? tiny : full;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: must be a non-negative number (got ${JSON.stringify(raw)})`);
  return n;
}

function list(name: string, full: number[], tiny: number[], scale: Scale): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return scale === 'tiny' ? tiny : full;
  const items = raw.split(',').map((s) => Number(s.trim()));
  if (items.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`${name}: must be a comma list of positive integers (got ${JSON.stringify(raw)})`);
  return items;
}

/** Reads BENCH_* settings; `scale` picks the defaults (tiny keeps the test suite's runs to seconds). */
export function readParams(scale: Scale): Params {
  return {
    scale,
    warmupSec: num('BENCH_WARMUP', 1, 0.3, scale),
    durationSec: num('BENCH_DURATION', 3, 0.7, scale),
    rounds: Math.max(1, Math.round(num('BENCH_ROUNDS', 3, 1, scale))),
    connections: num('BENCH_CONNECTIONS', 64, 4, scale),
    window: num('BENCH_WINDOW', 4, 2, scale),
    clientWorkers: num('BENCH_CLIENT_WORKERS', 2, 1, scale),
    payloadSmall: num('BENCH_PAYLOAD_SMALL', 64, 64, scale),
    payloadLarge: num('BENCH_PAYLOAD_LARGE', 16 * 1024, 16 * 1024, scale),
    cpuFunction: process.env.BENCH_CPU_FUNCTION ?? 'primes',
    cpuPayload: process.env.BENCH_CPU_PAYLOAD ?? '200000',
    httpConnections: num('BENCH_HTTP_CONNECTIONS', 64, 4, scale),
    subscribers: list('BENCH_SUBSCRIBERS', [1000, 10000], [20], scale),
    publishWindow: num('BENCH_PUBLISH_WINDOW', 16, 4, scale),
    maxLag: num('BENCH_MAX_LAG', 64, 32, scale),
    fanoutPayload: num('BENCH_FANOUT_PAYLOAD', 64, 64, scale),
    connectionSteps: list('BENCH_CONNECTION_STEPS', [1000, 5000, 10000, 15000, 19500], [20, 40], scale),
    socketIoConnectionMax: num('BENCH_SIO_CONNECTION_MAX', 10000, 40, scale),
    profile: process.env.BENCH_PROFILE === '1',
    systems: (process.env.BENCH_SYSTEMS ?? '').split(',').map((x) => x.trim()).filter(Boolean),
  };
}

/** The run's shared state. */
export class BenchContext {
  readonly secret = randomBytes(32).toString('base64url');
  readonly cores = cpus().length;
  /** The scenario running now; profiles of its gateways go to <out>/profiles/<scenario>. */
  scenario = '';

  constructor(readonly params: Params, readonly outDir: string, readonly log: (line: string) => void) {}

  /** Whether BENCH_SYSTEMS lets `system` run in this run. */
  wants(system: string): boolean {
    return this.params.systems.length === 0 || this.params.systems.includes(system);
  }

  profileDir(): string {
    return join(this.outDir, 'profiles', this.scenario);
  }

  profileFile(name: string): string {
    return join(this.profileDir(), `${name}.cpuprofile`);
  }

  /** An HS256 token (2 h) with `scope`, signed with the secret the run gives its gateways. */
  token(scope: string, sub = 'bench'): Promise<string> {
    return new SignJWT({ scope })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(new TextEncoder().encode(this.secret));
  }

  /**
   * `relaygate gateway` on a free port, plain WebSocket (no TLS), limits opened up for load.
   * `profiled`: run under --cpu-prof; the profile is written to profileFile(name) when it stops.
   */
  gateway(name: string, env: Record<string, string>, opts: StartOptions & { profiled?: boolean } = {}): Promise<Server> {
    return startNodeServer(name, join(projectRoot, 'dist', 'cli', 'main.js'), ['gateway'], {
      ...opts,
      ...(opts.profiled ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${this.profileDir()}`, `--cpu-prof-name=${name}.cpuprofile`] } : {}),
      env: {
        RELAYGATE_HOST: '127.0.0.1',
        RELAYGATE_PORT: '0',
        RELAYGATE_JWT_SECRET: this.secret,
        RELAYGATE_RATE_LIMIT: '100000000',
        RELAYGATE_RATE_BURST: '100000000',
        RELAYGATE_MAX_IN_FLIGHT: '4096',
        RELAYGATE_LOG_LEVEL: 'info',
        RELAYGATE_DRAIN_GRACE: '0',
        RELAYGATE_SLOW_START: '0',
        RELAYGATE_CLOSE_SPREAD: '0',
        ...env,
      },
    });
  }

  /** `relaygate node` on a free port; `linkPort` in its info when `link` is set. */
  node(name: string, link = false): Promise<Server> {
    return startNodeServer(name, join(projectRoot, 'dist', 'cli', 'main.js'), ['node'], {
      env: {
        RELAYGATE_HOST: '127.0.0.1',
        RELAYGATE_PORT: '0',
        RELAYGATE_NODE_ID: name,
        RELAYGATE_LOG_LEVEL: 'info',
        RELAYGATE_NODE_MAX_CONCURRENCY: '100000',
        ...(link ? { RELAYGATE_NODE_LINK_PORT: '0' } : {}),
      },
    });
  }

  /** A peer from bench/peers (compiled), settings by env. */
  peer(name: string, file: string, env: Record<string, string>): Promise<Server> {
    return startNodeServer(name, join(projectRoot, 'dist-bench', 'bench', 'peers', file), [], { env: { BENCH_PORT: '0', ...env } });
  }
}

function versionOf(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(projectRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch { return 'absent'; }
}

function run(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return 'unknown'; }
}

/** Machine, software versions and commit, for the report's header. */
export function describeMachine(): Record<string, string | number> {
  // BENCH_COMMIT names the commit when the run works on an export of it (git archive), not a checkout.
  const dirty = !process.env.BENCH_COMMIT && run('git', ['status', '--porcelain', '--', 'src', 'bench', 'proto']) !== '';
  const commit = process.env.BENCH_COMMIT ?? run('git', ['rev-parse', '--short', 'HEAD']);
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    commit: commit + (dirty ? '-dirty' : ''),
    redis: run('redis-server', ['--version']).replace(/^Redis server /, '').split(' ')[0]!.replace('v=', ''),
    openFilesLimit: Number(run('sh', ['-c', 'ulimit -n'])) || 0,
    'uWebSockets.js': versionOf('uWebSockets.js'),
    ioredis: versionOf('ioredis'),
    undici: versionOf('undici'),
    protobufjs: versionOf('protobufjs'),
    jose: versionOf('jose'),
    'socket.io': versionOf('socket.io'),
    'socket.io-client': versionOf('socket.io-client'),
    '@socket.io/redis-adapter': versionOf('@socket.io/redis-adapter'),
    autocannon: versionOf('autocannon'),
  };
}
