// The uWebSockets.js native check and the connection log lines.
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { uwsNative } from '../../src/transport/uws.js';
import { selfSignedCert, spawnGateway, startTestGateway, testToken } from '../helpers/gateway.js';
import { TestClient } from '../helpers/ws-client.js';

const uwsModule = fileURLToPath(new URL('../../dist/transport/uws.js', import.meta.url));

function nativeIn(env: Record<string, string>): string {
  return execFileSync(process.execPath, ['--input-type=module', '-e', `import { uwsNative } from ${JSON.stringify(uwsModule)}; process.stdout.write('native=' + uwsNative);`], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

describe('uWebSockets.js native binary', () => {
  it('is in use here', () => {
    expect(uwsNative).toBe(true);
    expect(nativeIn({})).toContain('native=true');
  });

  it('is reported missing when the package falls back to its ws shim', () => {
    expect(nativeIn({ UWS_USE_FALLBACK: '1' })).toContain('native=false');
  });

  it('a gateway refuses to run on the fallback unless allowed', async () => {
    await expect(spawnGateway({ UWS_USE_FALLBACK: '1' }, [], 15_000)).rejects.toThrow(/native binary did not load/);
  });
});

describe('TLS settings', () => {
  it('a wrong key passphrase stops the gateway at start with a line naming the setting', async () => {
    const cert = selfSignedCert('right-passphrase');
    try {
      const env = { RELAYGATE_TLS_CERT: cert.certFile, RELAYGATE_TLS_KEY: cert.keyFile, RELAYGATE_TLS_PASSPHRASE: 'wrong-passphrase' };
      await expect(spawnGateway(env, [], 15_000)).rejects.toThrow(/RELAYGATE_TLS_KEY: .*RELAYGATE_TLS_PASSPHRASE/);
      await expect(startTestGateway(env)).rejects.toThrow(/RELAYGATE_TLS_KEY/);
      await expect(startTestGateway({ ...env, RELAYGATE_TLS_CERT: `${cert.dir}/missing.pem` })).rejects.toThrow(/RELAYGATE_TLS_CERT: cannot read/);
    } finally {
      cert.remove();
    }
  });
});

describe('connection log lines', () => {
  it('one line at open and one at close, with session, subprotocol, subject, tenant and code; never the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const gw = await startTestGateway({}, pino({ level: 'info' }, sink));
    const token = await testToken({ sub: 'carol', tenant: 'acme' });
    const client = await TestClient.connect(gw.wsUrl, { token, tokenInQuery: true, subprotocol: 'json' });
    const sessionId = String(client.welcome.body.sessionId);
    client.send({ id: 1, publish: { topic: 'secret/topic', payload: Buffer.from('top secret payload').toString('base64') } });
    await client.reply(1);
    client.close();
    await client.closed;
    await gw.close();
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.session === sessionId);
    expect(entries.map((e) => e.msg)).toEqual(['connection open', 'connection closed']);
    expect(entries[0]).toMatchObject({ subprotocol: 'json', subject: 'carol', tenant: 'acme' });
    expect(entries[1]).toMatchObject({ code: 1000, subject: 'carol', tenant: 'acme' });
    const all = lines.join('\n');
    expect(all).not.toContain(token);
    expect(all).not.toContain('access_token');
    expect(all).not.toContain('top secret payload');
    expect(all).not.toContain(Buffer.from('top secret payload').toString('base64'));
  });
});
