// Every write the gateway makes after an upgrade is corked: a gateway process driven through
// upgrades, invokes over HTTP and the binary node link, and fan-out prints no uWS cork warning; and
// upgrades completed after an asynchronous token check never lose their connection.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnGateway, startTestGateway, testToken, type GatewayProcess } from '../helpers/gateway.js';
import { spawnLinkNode, type LinkNodeProcess } from '../helpers/link-node-process.js';
import { TestClient } from '../helpers/ws-client.js';

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a gateway process under invokes and fan-out', () => {
  let node: LinkNodeProcess;
  let gw: GatewayProcess;
  let stderr = '';
  const clients: TestClient[] = [];

  beforeAll(async () => {
    node = await spawnLinkNode();
    gw = await spawnGateway({
      RELAYGATE_NODES: `http://127.0.0.1:${node.port},relaygate+tcp://127.0.0.1:${node.linkPort}`,
      RELAYGATE_SLOW_START: '0',
      RELAYGATE_RATE_LIMIT: '100000',
      RELAYGATE_RATE_BURST: '100000',
    });
    gw.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  });
  afterAll(async () => {
    for (const c of clients) c.terminate();
    gw?.kill('SIGKILL');
    await gw?.exited;
    await node?.stop();
  });

  it('prints no uWS cork warning', async () => {
    const url = `ws://127.0.0.1:${gw.port}/v1/ws`;
    // Tokens verified once over HTTP (an answer written in res.cork) upgrade from the credential
    // cache, synchronously; an upgrade after an asynchronous check is the one documented exception.
    const tokens = await Promise.all([0, 1, 2, 3].map((i) => testToken({ sub: `user-${i}` })));
    for (const token of tokens) {
      const res = await fetch(`http://127.0.0.1:${gw.port}/v1/invoke/echo`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'warm' });
      expect(res.status).toBe(200);
    }
    const shared = tokens[0]!;
    for (let i = 0; i < 20; i++) {
      clients.push(await TestClient.connect(url, { token: tokens[i % tokens.length]!, subprotocol: i % 4 === 3 ? 'json' : 'proto' }));
    }
    for (const c of clients) expect((await c.request({ id: 1, subscribe: { topic: 'cork/feed' } })).kind).toBe('ack');

    // Invokes answered from node links (outside uWS callbacks), several in flight per socket.
    const perClient = 12;
    for (const c of clients) {
      for (let i = 0; i < perClient; i++) c.send({ id: 100 + i, invoke: { function: 'echo', payload: Buffer.from(`hi ${i}`).toString('base64') } });
    }
    const publisher = clients[0]!;
    for (let i = 0; i < 30; i++) publisher.send({ id: 500 + i, publish: { topic: 'cork/feed', payload: Buffer.from(`event ${i}`).toString('base64') } });
    const res = await fetch(`http://127.0.0.1:${gw.port}/v1/invoke/echo`, { method: 'POST', headers: { authorization: `Bearer ${shared}` }, body: 'over http' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('over http');

    for (const c of clients) {
      await until('invoke results', () => c.received.filter((f) => f.id >= 100 && f.id < 100 + perClient && f.kind === 'result').length === perClient);
      await until('events', () => c.received.filter((f) => f.kind === 'event').length === 30);
    }
    for (const c of clients) expect(c.ws.readyState).toBe(1);
    expect(stderr).not.toMatch(/cork/i);
  });
});

describe('upgrades completed asynchronously', () => {
  it('each of 150 connections with a token verified at its upgrade gets Welcome and stays open', { timeout: 120_000 }, async () => {
    const gw = await startTestGateway({});
    try {
      for (let i = 0; i < 150; i++) {
        // A token never seen before is verified asynchronously, then upgraded.
        const client = await TestClient.connect(gw.wsUrl, { token: await testToken({ sub: `fresh-${i}` }), subprotocol: i % 2 === 0 ? 'proto' : 'json' });
        expect(client.welcome.kind).toBe('welcome');
        const answer = await Promise.race([client.ping(1), client.closed.then((c) => ({ kind: `closed ${c.code}` }))]);
        expect(answer.kind, `connection ${i}`).toBe('pong');
        client.close();
      }
    } finally {
      await gw.close();
    }
  });

  it('an upgrade request saying Connection: close is refused with 400, without harm to the gateway', async () => {
    const gw = await startTestGateway({});
    try {
      const token = await testToken({ sub: 'closer' });
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(gw.port, '127.0.0.1', () => {
          socket.write(['GET /v1/ws HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: close',
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: relaygate.v1.proto',
            `Authorization: Bearer ${token}`, '', ''].join('\r\n'));
        });
        let text = '';
        socket.on('data', (d) => { text += d.toString('latin1'); });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      // uWS 20.30 would upgrade it and close the socket behind the 101, which can crash the process.
      expect(answer).toMatch(/^HTTP\/1\.1 400/);
      expect(answer).toContain('INVALID_ARGUMENT');
      const client = await TestClient.connect(gw.wsUrl, { token });
      expect((await client.ping(1)).kind).toBe('pong');
      client.close();
    } finally {
      await gw.close();
    }
  });
});
