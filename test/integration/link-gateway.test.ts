// The binary node link through a real gateway and the real reference node (`relaygate node
// --node-link-port`): configured statically as relaygate+tcp://, and advertised through the
// Redis registry, where the gateway must prefer it over the node's HTTP URL.
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { startTestGateway, testToken, type TestGateway } from '../helpers/gateway.js';
import { spawnLinkNode } from '../helpers/link-node-process.js';
import { spawnReferenceNode, waitUntil, type NodeProcess } from '../helpers/nodes.js';
import { TestClient, type Received } from '../helpers/ws-client.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function referenceNode(env: Record<string, string> = {}): Promise<{ node: NodeProcess; linkPort: number }> {
  const node = await spawnReferenceNode({ RELAYGATE_NODE_LINK_PORT: '0', ...env });
  cleanup.push(() => node.kill());
  const listening = await node.waitForLog((e) => e.msg === 'listening');
  expect(typeof listening.linkPort).toBe('number');
  return { node, linkPort: listening.linkPort as number };
}

async function gateway(env: Record<string, string>): Promise<TestGateway> {
  const gw = await startTestGateway(env);
  cleanup.push(() => gw.close());
  return gw;
}

async function client(gw: TestGateway): Promise<TestClient> {
  const c = await TestClient.connect(gw.wsUrl, { token: await testToken() });
  cleanup.push(() => c.close());
  return c;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const text = (f: Received): string => Buffer.from((f.body.payload as Uint8Array | undefined) ?? []).toString();

/** Sends an Invoke and collects its frames up to the terminal one. */
async function invoke(c: TestClient, id: number, fn: string, payload: string, extra: Record<string, unknown> = {}): Promise<Received[]> {
  c.send({ id, invoke: { function: fn, payload: b64(payload), ...extra } });
  const frames: Received[] = [];
  for (;;) {
    const f = await c.reply(id, 30_000);
    frames.push(f);
    if (f.kind !== 'progress') return frames;
  }
}

describe('binary node link through the gateway', () => {
  it('a relaygate+tcp:// node in RELAYGATE_NODES serves results, progress, cancel and deadlines', async () => {
    const { linkPort } = await referenceNode({ RELAYGATE_NODE_ID: 'link-ref-1' });
    const gw = await gateway({ RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${linkPort}` });
    const c = await client(gw);

    const [echo] = await invoke(c, 1, 'echo', 'over the link', { contentType: 'text/plain' });
    expect(echo!.kind).toBe('result');
    expect(text(echo!)).toBe('over the link');
    expect(echo!.body.nodeId).toBe('link-ref-1');

    const primes = await invoke(c, 2, 'primes', '2000000');
    expect(primes.at(-1)!.kind).toBe('result');
    const fractions = primes.filter((f) => f.kind === 'progress').map((f) => f.body.fraction as number);
    expect(fractions.length).toBeGreaterThan(0);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);

    c.send({ id: 3, invoke: { function: 'sleep', payload: b64('20000') } });
    await new Promise((r) => setTimeout(r, 100));
    const ack = await c.request({ id: 4, cancel: { targetId: 3 } });
    expect(ack.kind).toBe('ack');
    const cancelled = await c.reply(3);
    expect(cancelled.kind).toBe('error');
    expect(cancelled.body.code).toBe(Code.CANCELLED);

    const [late] = await invoke(c, 5, 'sleep', '20000', { timeoutMs: 300 });
    expect(late!.body.code).toBe(Code.DEADLINE_EXCEEDED);

    // The HTTP bridge rides the same link.
    const res = await fetch(`${gw.httpUrl}/v1/invoke/sha256`, { method: 'POST', body: 'abc', headers: { authorization: `Bearer ${await testToken()}` } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).toString()).toMatch(/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad/);
  });

  it('a node killed mid-invoke over the link: the client gets exactly one UNAVAILABLE', async () => {
    const { node, linkPort } = await referenceNode();
    const gw = await gateway({ RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${linkPort}` });
    const c = await client(gw);
    expect((await invoke(c, 1, 'echo', 'warm'))[0]!.kind).toBe('result');
    for (let id = 10; id < 14; id++) c.send({ id, invoke: { function: 'sleep', payload: b64('30000') } });
    await new Promise((r) => setTimeout(r, 300));
    await node.kill();
    const answers = await Promise.all([10, 11, 12, 13].map((id) => c.reply(id, 20_000)));
    for (const a of answers) {
      expect(a.kind).toBe('error');
      expect(a.body.code).toBe(Code.UNAVAILABLE);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(c.received.filter((f) => f.id >= 10 && f.id < 14)).toEqual([]);
  });

  it('a node draining over the link mid-traffic: every invoke still succeeds, on the other node', async () => {
    const a = await referenceNode({ RELAYGATE_NODE_ID: 'drain-a' });
    const b = await referenceNode({ RELAYGATE_NODE_ID: 'drain-b' });
    const gw = await gateway({ RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${a.linkPort},relaygate+tcp://127.0.0.1:${b.linkPort}`, RELAYGATE_SLOW_START: '0' });
    const c = await client(gw);
    const answers: Received[] = [];
    let id = 100;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) answers.push(...(await invoke(c, id++, 'echo', 'x')));
    };
    const workers = Array.from({ length: 8 }, worker);
    await waitUntil(() => answers.filter((f) => f.body.nodeId === 'drain-a').length >= 20, 20_000, 'traffic on both nodes');
    a.node.child.kill('SIGTERM');
    expect(await a.node.exited).toBe(0);
    const afterExit = answers.length;
    await waitUntil(() => answers.length >= afterExit + 50, 20_000, 'traffic after the drain');
    stop = true;
    await Promise.all(workers);
    expect(answers.filter((f) => f.kind !== 'result')).toEqual([]);
    expect(answers.slice(afterExit).every((f) => f.body.nodeId === 'drain-b')).toBe(true);
  });

  it('static link nodes serving different functions: each call goes to a node whose hello listed it', async () => {
    const { linkPort: referencePort } = await referenceNode({ RELAYGATE_NODE_ID: 'ref-functions' });
    const sdkNode = await spawnLinkNode({ LINK_NODE_ID: 'sdk-functions' });
    cleanup.push(() => sdkNode.stop());
    const gw = await gateway({
      RELAYGATE_NODES: `relaygate+tcp://127.0.0.1:${referencePort},relaygate+tcp://127.0.0.1:${sdkNode.linkPort}`,
      RELAYGATE_HEALTH_INTERVAL: '100ms',
      RELAYGATE_SLOW_START: '0',
    });
    const c = await client(gw);
    // Both nodes serve echo; only the reference node serves sha256, only the SDK node whoami.
    await waitUntil(async () => (await invoke(c, 1, 'echo', 'x'))[0]!.kind === 'result', 20_000, 'the links to come up');
    await new Promise((r) => setTimeout(r, 500)); // a few health checks: every hello has been read
    let id = 10;
    for (let i = 0; i < 12; i++) {
      const [hash] = await invoke(c, id++, 'sha256', 'abc');
      expect(hash!.kind).toBe('result');
      expect(hash!.body.nodeId).toBe('ref-functions');
      const [who] = await invoke(c, id++, 'whoami', '');
      expect(who!.kind).toBe('result');
      expect(who!.body.nodeId).toBe('sdk-functions');
    }
    const [missing] = await invoke(c, id++, 'no-such-function', '');
    expect(missing!.kind).toBe('error');
    expect(missing!.body.code).toBe(Code.NOT_FOUND);
  });

  it('a node registered in Redis with a link URL is reached over the link, not HTTP', async () => {
    const prefix = `rg-link-${process.pid}-${Date.now()}`;
    const redis = { RELAYGATE_REDIS_URL: 'redis://127.0.0.1:6379', RELAYGATE_REDIS_PREFIX: prefix, RELAYGATE_REGISTRY_HEARTBEAT: '500ms' };
    // The advertised HTTP URL goes nowhere: only the binary link can carry the call.
    await referenceNode({ ...redis, RELAYGATE_NODE_ID: 'link-registered', RELAYGATE_NODE_URL: 'http://127.0.0.1:9' });
    const gw = await gateway(redis);
    const c = await client(gw);
    let id = 1;
    let answer: Received | undefined;
    await waitUntil(async () => {
      [answer] = await invoke(c, id++, 'echo', 'registered');
      return answer!.kind === 'result';
    }, 20_000, 'an invoke to succeed');
    expect(text(answer!)).toBe('registered');
    expect(answer!.body.nodeId).toBe('link-registered');
  });
});
