// Faults on the binary node link with real node processes: killed mid-request, half-open (the
// process stopped), drained by SIGTERM, and a peer speaking garbage. Every call gets exactly one
// answer, and "unsent" is claimed only for requests that never left the gateway.
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { decodeLinkFrame, encodeLinkFrame } from '../../src/protocol/link-codec.js';
import { FrameParser } from '../../src/protocol/link-framing.js';
import { BinaryNodeLink, type BinaryLinkOptions } from '../../src/nodes/binary-link.js';
import { spawnLinkNode, type LinkNodeProcess } from '../helpers/link-node-process.js';
import { callOnce, nodeCall, startCall, until, type CallOutcome } from '../helpers/node-calls.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function node(): Promise<LinkNodeProcess> {
  const n = await spawnLinkNode();
  cleanup.push(() => n.stop());
  return n;
}

function link(port: number, over: BinaryLinkOptions = {}): BinaryNodeLink {
  const l = new BinaryNodeLink(`relaygate+tcp://127.0.0.1:${port}`, { reconnectBaseMs: 50, reconnectMaxMs: 500, ...over });
  cleanup.push(() => l.close());
  return l;
}

/** Calls `then` once the gateway's first request frame arrives on `socket`. */
function onRequest(socket: Socket, then: () => void): void {
  let fired = false;
  const parser = new FrameParser(1 << 20, (frame) => {
    if (!fired && 'request' in decodeLinkFrame(frame)) {
      fired = true;
      then();
    }
  });
  socket.on('data', (chunk: Buffer) => parser.push(chunk));
}

/** Lets late duplicate answers (there must be none) arrive before counting. */
async function settleAndCount(outcomes: CallOutcome[]): Promise<number[]> {
  await new Promise((r) => setTimeout(r, 200));
  return outcomes.map((o) => o.terminals);
}

describe('node link faults (real processes)', () => {
  it('node killed mid-request: each in-flight call ends once with UNAVAILABLE, not unsent', async () => {
    const n = await node();
    const l = link(n.linkPort);
    const calls = Array.from({ length: 8 }, () => nodeCall('sleep', '30000'));
    const started = calls.map((c) => startCall(l, c));
    await until(() => calls.every((c) => n.seen('started').includes(c.requestId)), 15_000, 'all calls to start');
    n.child.kill('SIGKILL');
    const outs = await Promise.all(started.map((s) => s.done));
    for (const o of outs) {
      expect(o.failure?.error.code).toBe(Code.UNAVAILABLE);
      expect(o.failure).toMatchObject({ unsent: false, connectionError: true });
    }
    expect(await settleAndCount(outs)).toEqual(outs.map(() => 1));
    // With the node gone, new calls fail fast as never sent (the balancer may retry them elsewhere).
    await until(() => l.readyConnections === 0, 10_000, 'link to notice');
    const after = await callOnce(l, nodeCall('echo', 'x'));
    expect(after.failure).toMatchObject({ unsent: true, connectionError: true });
    expect(await l.checkHealth(300)).toBe(false);
  });

  it('half-open link (node stopped): no pong within the deadline ends in-flight calls with UNAVAILABLE', async () => {
    const n = await node();
    const l = link(n.linkPort, { pingIntervalMs: 200, pongTimeoutMs: 800, connectTimeoutMs: 1000 });
    const calls = Array.from({ length: 4 }, () => nodeCall('sleep', '60000', { deadlineAtMs: Date.now() + 60_000 }));
    const started = calls.map((c) => startCall(l, c));
    await until(() => calls.every((c) => n.seen('started').includes(c.requestId)), 15_000, 'all calls to start');
    n.child.kill('SIGSTOP');
    const before = Date.now();
    const outs = await Promise.all(started.map((s) => s.done));
    // Detected by the pong deadline, long before the calls' own 60 s deadline.
    expect(Date.now() - before).toBeLessThan(30_000);
    for (const o of outs) {
      expect(o.failure?.error.code).toBe(Code.UNAVAILABLE);
      expect(o.failure).toMatchObject({ unsent: false, connectionError: true });
    }
    expect(await l.checkHealth(500)).toBe(false);
    // The stopped process still accepts TCP connections in the kernel but never says hello.
    const late = await callOnce(l, nodeCall('echo', 'x', { deadlineAtMs: Date.now() + 20_000 }));
    expect(late.failure).toMatchObject({ unsent: true, connectionError: true });
    expect(await settleAndCount([...outs, late])).toEqual([...outs, late].map(() => 1));
    // Resumed, the node is usable again through the same link.
    n.child.kill('SIGCONT');
    await until(() => l.readyConnections > 0, 20_000, 'reconnect after SIGCONT');
    expect((await callOnce(l, nodeCall('echo', 'back'))).result?.payload.toString()).toBe('back');
  });

  it('drain by SIGTERM: in-flight calls finish marked drain, new calls fail unsent, the process exits 0', async () => {
    const n = await node();
    const l = link(n.linkPort);
    const call = nodeCall('sleep', '700');
    const inflight = startCall(l, call);
    await until(() => n.seen('started').includes(call.requestId), 15_000, 'call to start');
    n.child.kill('SIGTERM');
    await until(() => l.isDraining, 15_000, 'drain notice');
    const refused = await callOnce(l, nodeCall('echo', 'late'));
    expect(refused.failure).toMatchObject({ unsent: true, drain: true });
    expect(refused.failure!.error.code).toBe(Code.UNAVAILABLE);
    const done = await inflight.done;
    expect(done.result?.payload.toString()).toBe('slept 700');
    expect(done.result?.drain).toBe(true);
    expect(await n.exited).toBe(0);
    expect(n.seen('aborted')).toEqual([]);
    expect(await settleAndCount([done, refused])).toEqual([1, 1]);
    expect(await l.checkHealth(300)).toBe(false);
  });

  describe('a peer that speaks garbage', () => {
    async function rawServer(onConnect: (socket: Socket) => void): Promise<{ port: number; connections: () => number }> {
      let count = 0;
      const sockets = new Set<Socket>();
      const server = createServer((socket) => {
        count++;
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => sockets.delete(socket));
        onConnect(socket);
      });
      cleanup.push(async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as { port: number }).port, connections: () => count };
    }

    it('garbage instead of a hello: calls fail once as unsent, reconnects back off', async () => {
      const peer = await rawServer((s) => s.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n\xff\xff\xff\xff\xff\xff', 'latin1')));
      const l = link(peer.port, { reconnectBaseMs: 100, reconnectMaxMs: 1000, connectTimeoutMs: 1000 });
      const outs = await Promise.all(Array.from({ length: 5 }, () => callOnce(l, nodeCall('echo', 'x'))));
      for (const o of outs) expect(o.failure).toMatchObject({ unsent: true, connectionError: true });
      const at = peer.connections();
      await new Promise((r) => setTimeout(r, 1000));
      // Four connection slots with backoff: a handful of attempts per second, not a spin.
      expect(peer.connections() - at).toBeLessThan(40);
      expect(await settleAndCount(outs)).toEqual(outs.map(() => 1));
    });

    it('a valid hello, then garbage mid-request: in-flight calls end once with UNAVAILABLE', async () => {
      const hello = encodeLinkFrame({ id: 0, hello: { version: 1, nodeId: 'liar', functions: ['echo'], maxInFlight: 100 } });
      const peer = await rawServer((s) => {
        s.write(hello);
        // Once a request arrives, answer with a frame that decodes to nonsense.
        onRequest(s, () => s.write(Buffer.from([0x05, 0x0a, 0xff, 0xff, 0xff, 0xff])));
      });
      const l = link(peer.port, { connections: 1 });
      await until(() => l.readyConnections === 1, 10_000, 'hello');
      const outs = await Promise.all(Array.from({ length: 3 }, () => callOnce(l, nodeCall('echo', 'x'))));
      for (const o of outs) {
        expect(o.failure?.error.code).toBe(Code.UNAVAILABLE);
        expect(o.failure).toMatchObject({ unsent: false, connectionError: true });
      }
      expect(await settleAndCount(outs)).toEqual(outs.map(() => 1));
    });

    it('an oversized frame length closes the connection before buffering it', async () => {
      const hello = encodeLinkFrame({ id: 0, hello: { version: 1, nodeId: 'big' } });
      const peer = await rawServer((s) => {
        s.write(hello);
        onRequest(s, () => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])));
      });
      const l = link(peer.port, { connections: 1, maxFrameBytes: 1024 });
      await until(() => l.readyConnections === 1, 10_000, 'hello');
      const out = await callOnce(l, nodeCall('echo', 'x'));
      expect(out.failure).toMatchObject({ unsent: false, connectionError: true });
      expect(out.failure!.error.code).toBe(Code.UNAVAILABLE);
    });

    it('a peer speaking an unsupported version is refused', async () => {
      const peer = await rawServer((s) => s.write(encodeLinkFrame({ id: 0, hello: { version: 0, nodeId: 'old' } })));
      const l = link(peer.port, { connections: 1 });
      const out = await callOnce(l, nodeCall('echo', 'x'));
      expect(out.failure).toMatchObject({ unsent: true, connectionError: true });
      expect(l.readyConnections).toBe(0);
    });
  });
});
