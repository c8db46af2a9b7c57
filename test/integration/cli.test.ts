// The `relaygate` command as users run it: help, settings errors, token, the uWS fallback guard, dev.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { settingsTable } from '../../src/config.js';
import { decodeServerFrame, encodeClientFrame } from '../../src/protocol/codec.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli.js';

const running: RunningCli[] = [];
const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relaygate-cli-'));
  tempDirs.push(dir);
  return dir;
}

describe('help', () => {
  it('lists every command', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['gateway', 'node', 'dev', 'token', 'call', 'sub', 'pub']) expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it.each(['gateway', 'node', 'dev'] as const)('relaygate %s --help lists each of its settings with the default', async (command) => {
    const r = await runCli([command, '--help']);
    expect(r.code).toBe(0);
    const own = settingsTable.filter((s) => s.commands.includes(command));
    expect(own.length).toBeGreaterThan(3);
    for (const setting of own) {
      expect(r.stdout).toContain(setting.env);
      if (setting.default !== undefined) expect(r.stdout).toContain(`(default ${setting.default})`);
    }
  });

  it('an unknown command exits non-zero', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown command');
  });
});

describe('settings errors', () => {
  it.each([
    [{ RELAYGATE_PORT: 'eighty' }, [], 'RELAYGATE_PORT'],
    [{ RELAYGATE_PORT: '70000' }, [], 'RELAYGATE_PORT'],
    [{ RELAYGATE_MAX_FRAME_BYTES: '12 parsecs' }, [], 'RELAYGATE_MAX_FRAME_BYTES'],
    [{ RELAYGATE_REDIS_CLUSTER: 'maybe' }, [], 'RELAYGATE_REDIS_CLUSTER'],
    [{}, ['--idle-timeout', 'soon'], 'RELAYGATE_IDLE_TIMEOUT'],
    [{}, ['--port'], '--port'],
  ])('%o %o exits non-zero with one line naming %s', async (env, args, name) => {
    const r = await runCli(['gateway', ...args], { RELAYGATE_JWT_SECRET: 'x'.repeat(32), ...env });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  it('a secret value is never echoed in the error', async () => {
    const r = await runCli(['gateway'], { RELAYGATE_TLS_PASSPHRASE: '', RELAYGATE_JWT_SECRET: 's3cr3t-value-that-must-not-leak' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('RELAYGATE_TLS_PASSPHRASE');
    expect(r.stderr).not.toContain('s3cr3t');
  });
});

describe('relaygate token', () => {
  it('prints an HS256 JWT with sub, scope, tenant and expiry', async () => {
    const secret = 'token-test-secret-0123456789abcdef';
    const r = await runCli(['token', '--sub', 'alice', '--scope', 'invoke:* subscribe:users/{sub}/**', '--tenant', 'acme', '--ttl', '10m'], { RELAYGATE_JWT_SECRET: secret });
    expect(r.code).toBe(0);
    const { payload, protectedHeader } = await jwtVerify(r.stdout.trim(), new TextEncoder().encode(secret));
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.sub).toBe('alice');
    expect(payload.scope).toBe('invoke:* subscribe:users/{sub}/**');
    expect(payload.tenant).toBe('acme');
    const ttl = payload.exp! - payload.iat!;
    expect(ttl).toBe(600);
  });

  it('refuses without a secret, a subject or a sane ttl', async () => {
    expect((await runCli(['token', '--sub', 'a'])).stderr).toContain('RELAYGATE_JWT_SECRET');
    expect((await runCli(['token'], { RELAYGATE_JWT_SECRET: 'k'.repeat(32) })).stderr).toContain('--sub');
    expect((await runCli(['token', '--sub', 'a', '--ttl', 'forever'], { RELAYGATE_JWT_SECRET: 'k'.repeat(32) })).stderr).toContain('--ttl');
  });
});

describe('uWebSockets.js fallback guard', () => {
  it('a gateway refuses to run on the ws fallback and says why', async () => {
    const r = await runCli(['gateway', '--port', '0'], { UWS_USE_FALLBACK: '1', RELAYGATE_JWT_SECRET: 'k'.repeat(32) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('native binary did not load');
    expect(r.stderr).toContain('RELAYGATE_ALLOW_UWS_FALLBACK');
  });

  it('runs on the fallback only when explicitly allowed', async () => {
    const gateway = startCli(['gateway', '--port', '0', '--host', '127.0.0.1'], {
      UWS_USE_FALLBACK: '1',
      RELAYGATE_ALLOW_UWS_FALLBACK: '1',
      RELAYGATE_JWT_SECRET: 'k'.repeat(32),
    });
    running.push(gateway);
    await gateway.waitFor(/"msg":"listening"/);
    expect(gateway.output()).toContain('running on it anyway');
    expect(await gateway.stop('SIGTERM')).toBe(0);
  });
});

function request(ws: WebSocket, frame: Parameters<typeof encodeClientFrame>[0]): Promise<ReturnType<typeof decodeServerFrame>> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const reply = decodeServerFrame(data);
      if (reply.id === frame.id) {
        ws.off('message', onMessage);
        resolve(reply);
      }
    };
    ws.on('message', onMessage);
    ws.send(encodeClientFrame(frame));
  });
}

describe('relaygate dev', () => {
  it('serves wss with a self-signed certificate, nodes and a printed token; reuses its state', async () => {
    const stateDir = tempDir();
    const dev = startCli(['dev', '--port', '0', '--state-dir', stateDir]);
    running.push(dev);
    const [, token] = await dev.waitFor(/token: (\S+)/);
    const [, url] = await dev.waitFor(/gateway\s+(wss:\/\/\S+)/);
    expect(statSync(join(stateDir, 'dev-secret')).mode & 0o077).toBe(0);
    const cert = readFileSync(join(stateDir, 'tls-cert.pem'), 'utf8');

    const ws = new WebSocket(url!, 'relaygate.v1.proto', { headers: { authorization: `Bearer ${token}` }, ca: cert });
    const welcome = await new Promise<ReturnType<typeof decodeServerFrame>>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(decodeServerFrame(data)));
      ws.once('error', reject);
    });
    expect(welcome.body).toBe('welcome');
    const pong = await request(ws, { id: 1, ping: { clientTimeMs: 42 } });
    expect(Number(pong.pong?.clientTimeMs)).toBe(42);
    const hash = await request(ws, { id: 2, invoke: { function: 'sha256', payload: new Uint8Array(Buffer.from('hello')) } });
    expect(hash.body).toBe('result');
    expect(Buffer.from(hash.result!.payload!).toString()).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    ws.close();
    expect(await dev.stop('SIGTERM')).toBe(0);

    const again = startCli(['dev', '--port', '0', '--state-dir', stateDir]);
    running.push(again);
    await again.waitFor(/token: (\S+)/);
    expect(readFileSync(join(stateDir, 'tls-cert.pem'), 'utf8')).toBe(cert);
    expect(await again.stop('SIGTERM')).toBe(0);
  });
});
