// Starts gateways for tests: in-process through startGateway, or as a real `relaygate gateway`
// child process (waiting for its "listening" log line). Also signs tokens and makes TLS certificates.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '../../src/auth/token.js';
import { loadSettings } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { cliPath } from './cli.js';
import { spawnNodeProcess, type LogEntry } from './nodes.js';

/** The HS256 secret test gateways verify with. */
export const TEST_SECRET = 'relaygate-test-secret-0123456789abcdef';

/** Signs a test token (default: subject alice, every grant, 1 hour). */
export function testToken(o: { sub?: string; scope?: string; tenant?: string; ttlMs?: number; audience?: string; issuer?: string; secret?: string } = {}): Promise<string> {
  return signToken({
    secret: o.secret ?? TEST_SECRET,
    sub: o.sub ?? 'alice',
    scope: o.scope ?? 'invoke:* subscribe:** publish:**',
    ttlMs: o.ttlMs ?? 3_600_000,
    ...(o.tenant ? { tenant: o.tenant } : {}),
    ...(o.audience ? { audience: o.audience } : {}),
    ...(o.issuer ? { issuer: o.issuer } : {}),
  });
}

/** A self-signed certificate for 127.0.0.1/localhost in a temporary folder; `remove` deletes it. */
export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: string;
  passphrase?: string;
  remove(): void;
}

/** Generates a self-signed certificate with openssl; with `passphrase` the key is encrypted. */
export function selfSignedCert(passphrase?: string): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'relaygate-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', keyFile, '-out', certFile,
    ...(passphrase ? ['-passout', `pass:${passphrase}`] : ['-nodes']),
  ], { stdio: 'ignore' });
  return {
    dir, certFile, keyFile, cert: readFileSync(certFile, 'utf8'),
    ...(passphrase ? { passphrase } : {}),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A gateway running in this process. */
export interface TestGateway {
  gateway: Gateway;
  port: number;
  /** ws:// or wss:// URL of /v1/ws. */
  wsUrl: string;
  /** http:// or https:// base URL. */
  httpUrl: string;
  close(): Promise<void>;
}

/** The test defaults under `env`: loopback, port 0, and TEST_SECRET unless another key source is given. */
function testEnv(env: Record<string, string>): Record<string, string> {
  const keyGiven = env.RELAYGATE_JWT_PUBLIC_KEY !== undefined || env.RELAYGATE_JWKS_URL !== undefined;
  return { ...(keyGiven ? {} : { RELAYGATE_JWT_SECRET: TEST_SECRET }), RELAYGATE_HOST: '127.0.0.1', RELAYGATE_PORT: '0', ...env };
}

/** Starts a gateway in-process on 127.0.0.1, port 0, with `env` settings over the test defaults. */
export async function startTestGateway(env: Record<string, string> = {}, log: Logger = silentLogger()): Promise<TestGateway> {
  const { values } = loadSettings('gateway', testEnv(env), []);
  const gateway = await startGateway(values, log);
  const tls = Boolean(values.tlsCert && values.tlsKey);
  return {
    gateway,
    port: gateway.port,
    wsUrl: `${tls ? 'wss' : 'ws'}://127.0.0.1:${gateway.port}/v1/ws`,
    httpUrl: `${tls ? 'https' : 'http'}://127.0.0.1:${gateway.port}`,
    close: () => gateway.close(),
  };
}

/** A `relaygate gateway` child process. */
export interface GatewayProcess {
  child: ChildProcess;
  port: number;
  /** Its JSON log lines so far. */
  logs: LogEntry[];
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Spawns `relaygate gateway --port 0` (needs `npm run build`) and waits for its "listening" line. */
export async function spawnGateway(env: Record<string, string> = {}, args: string[] = [], timeoutMs = 30_000): Promise<GatewayProcess> {
  const proc = await spawnNodeProcess({ args: [cliPath, 'gateway', '--port', '0', ...args], env: testEnv(env) }, timeoutMs);
  return { child: proc.child, port: proc.port, logs: proc.logs, exited: proc.exited, kill: (signal = 'SIGTERM') => proc.child.kill(signal) };
}
