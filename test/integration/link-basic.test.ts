// The binary node link end to end in one process: a real LinkServer on a real port, a real
// BinaryNodeLink over TCP (and TLS). Fault tests with separate node processes live in link-faults.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { FunctionHost, type NodeFunction } from '../../src/node/function-host.js';
import { LinkServer, type LinkServerOptions } from '../../src/node/link-server.js';
import { BinaryNodeLink, type BinaryLinkOptions } from '../../src/nodes/binary-link.js';
import { encodeLinkFrame } from '../../src/protocol/link-codec.js';
import { testFunctionNames, testFunctions, type NodeObservations } from '../helpers/link-functions.js';
import { callOnce, nodeCall, startCall, until } from '../helpers/node-calls.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

interface ServeOptions extends Partial<LinkServerOptions> {
  functions?: Record<string, NodeFunction>;
  functionHost?: FunctionHost;
  host?: never;
  id?: string;
}

async function serve(over: ServeOptions = {}, seen?: NodeObservations): Promise<LinkServer> {
  const { functions, functionHost, id, ...rest } = over;
  const host = functionHost ?? new FunctionHost(functions ?? testFunctions(seen), { log: silentLogger() });
  const server = await LinkServer.listen(host, {
    host: '127.0.0.1', port: 0, nodeId: () => id ?? 'node-a', weight: 2, log: silentLogger(), ...rest,
  });
  cleanup.push(() => server.close());
  return server;
}

function link(port: number, over: BinaryLinkOptions = {}, scheme = 'relaygate+tcp'): BinaryNodeLink {
  const l = new BinaryNodeLink(`${scheme}://127.0.0.1:${port}`, { reconnectBaseMs: 20, reconnectMaxMs: 200, ...over });
  cleanup.push(() => l.close());
  return l;
}

describe('binary node link', () => {
  it('carries a call and its context to the node and the result back', async () => {
    const server = await serve();
    const infos: unknown[] = [];
    const l = link(server.port, { onNodeInfo: (i) => infos.push(i) });
    const echo = await callOnce(l, nodeCall('echo', 'hello node'));
    expect(echo.failure).toBeUndefined();
    expect(echo.result!.payload.toString()).toBe('hello node');
    expect(echo.result!.contentType).toBe('text/plain');
    expect(echo.result!.nodeId).toBe('node-a');
    expect(echo.result!.drain).toBe(false);
    expect(infos[0]).toEqual({ nodeId: 'node-a', functions: testFunctionNames, weight: 2, draining: false });

    const who = await callOnce(l, nodeCall('whoami', '', { subject: 'alice', tenant: 't1', metadata: { trace: 'abc' }, deadlineAtMs: Date.now() + 5000 }));
    const seen = JSON.parse(who.result!.payload.toString());
    expect(seen).toMatchObject({ subject: 'alice', tenant: 't1', metadata: { trace: 'abc' } });
    expect(seen.deadlineLeft).toBeGreaterThan(3000);
    expect(seen.deadlineLeft).toBeLessThanOrEqual(5000);
  });

  it('streams progress in order before the result', async () => {
    const server = await serve();
    const out = await callOnce(link(server.port), nodeCall('steps', '4'));
    expect(out.progress).toEqual([1, 2, 3, 4].map((i) => ({ fraction: i / 4, payload: `step ${i}` })));
    expect(out.result!.payload.toString()).toBe('done');
    expect(out.terminals).toBe(1);
  });

  it('maps node errors to their codes, keeps retry-after, hides internal details', async () => {
    const server = await serve();
    const l = link(server.port);
    const busy = await callOnce(l, nodeCall('fail', `${Code.RESOURCE_EXHAUSTED}:750`));
    expect(busy.failure).toMatchObject({ unsent: false, connectionError: false, drain: false });
    expect(busy.failure!.error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(busy.failure!.error.retryAfterMs).toBe(750);
    const crash = await callOnce(l, nodeCall('crash', ''));
    expect(crash.failure!.error.code).toBe(Code.INTERNAL);
    expect(crash.failure!.error.message).not.toMatch(/secret/);
    const missing = await callOnce(l, nodeCall('nope', ''));
    expect(missing.failure!.error.code).toBe(Code.NOT_FOUND);
    const weird = await callOnce(l, nodeCall('fail', '77'));
    expect(weird.failure!.error.code).toBe(Code.UNKNOWN);
  });

  it('cancellation reaches the node and the call ends once with CANCELLED', async () => {
    const seen: NodeObservations = { started: [], aborted: [] };
    const server = await serve({}, seen);
    const l = link(server.port);
    const ac = new AbortController();
    const call = nodeCall('sleep', '20000', { signal: ac.signal });
    const { outcome, done } = startCall(l, call);
    await until(() => seen.started.includes(call.requestId), 10_000, 'node to start the call');
    ac.abort();
    const out = await done;
    expect(out.failure!.error.code).toBe(Code.CANCELLED);
    expect(out.failure!.unsent).toBe(false);
    await until(() => seen.aborted.includes(call.requestId), 10_000, 'node to observe the abort');
    await until(() => server.inFlight === 0, 10_000, 'node to drop the call');
    expect(outcome.terminals).toBe(1);
  });

  it('a deadline ends the call with DEADLINE_EXCEEDED and aborts it at the node', async () => {
    const seen: NodeObservations = { started: [], aborted: [] };
    const server = await serve({}, seen);
    const call = nodeCall('sleep', '20000', { deadlineAtMs: Date.now() + 300 });
    const out = await callOnce(link(server.port), call);
    expect(out.failure!.error.code).toBe(Code.DEADLINE_EXCEEDED);
    await until(() => seen.aborted.includes(call.requestId), 10_000, 'node to observe the abort');
    expect(out.terminals).toBe(1);
  });

  it('spreads calls across its connections and respects the node\'s in-flight limit', async () => {
    let running = 0;
    let peak = 0;
    const inner = testFunctions();
    const server = await serve({
      maxInFlight: 3,
      functions: {
        sleep: async (req) => {
          running++;
          peak = Math.max(peak, running);
          try { return await inner.sleep!(req); } finally { running--; }
        },
      },
    });
    const l = link(server.port, { connections: 2 });
    await until(() => l.readyConnections === 2, 10_000, 'both connections');
    const outs = await Promise.all(Array.from({ length: 20 }, () => callOnce(l, nodeCall('sleep', '30'))));
    expect(outs.every((o) => o.result?.payload.toString() === 'slept 30' && o.terminals === 1)).toBe(true);
    expect(peak).toBeLessThanOrEqual(6);
    expect(peak).toBeGreaterThan(3); // both connections carried work at once
  });

  it('a call cancelled in the turn it was made is withdrawn from the batch and never reaches the node', async () => {
    const seen: NodeObservations = { started: [], aborted: [] };
    const server = await serve({}, seen);
    const l = link(server.port);
    await until(() => l.readyConnections === 4, 10_000, 'connections');
    const ac = new AbortController();
    const call = nodeCall('echo', 'never', { signal: ac.signal });
    const running = startCall(l, call);
    ac.abort();
    const out = await running.done;
    expect(out.failure!.error.code).toBe(Code.CANCELLED);
    expect((await callOnce(l, nodeCall('echo', 'after'))).result!.payload.toString()).toBe('after');
    expect(seen.started).not.toContain(call.requestId);
  });

  it('calls beyond every connection\'s in-flight limit wait within their deadline, in a bounded queue', async () => {
    const seen: NodeObservations = { started: [], aborted: [] };
    const server = await serve({ maxInFlight: 1 }, seen);
    const l = link(server.port, { connections: 1, maxWaiting: 1 });
    await until(() => l.readyConnections === 1, 10_000, 'connection');
    const busy = startCall(l, nodeCall('sleep', '1500'));
    const waiter = nodeCall('echo', 'late', { deadlineAtMs: Date.now() + 200 });
    const waiting = startCall(l, waiter);
    expect(l.pending()).toBe(1);
    const overflow = await callOnce(l, nodeCall('echo', 'overflow'));
    expect(overflow.failure!.error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(overflow.failure).toMatchObject({ unsent: true, connectionError: false });
    const expired = await waiting.done;
    expect(expired.failure!.error.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(l.pending()).toBe(0);
    const queued = startCall(l, nodeCall('echo', 'queued'));
    expect((await busy.done).result!.payload.toString()).toBe('slept 1500');
    expect((await queued.done).result!.payload.toString()).toBe('queued');
    expect(seen.started).not.toContain(waiter.requestId);
  });

  it('a frame larger than the peer accepts fails only its own call; the connection carries on', async () => {
    // Requests: the node accepts 4 KiB frames.
    const strict = await serve({ maxFrameBytes: 4096 });
    const l1 = link(strict.port, { connections: 1 });
    const [tooBig, fine1] = await Promise.all([callOnce(l1, nodeCall('echo', Buffer.alloc(5000))), callOnce(l1, nodeCall('echo', 'fine'))]);
    expect(tooBig.failure!.error.code).toBe(Code.INVALID_ARGUMENT);
    expect(tooBig.failure).toMatchObject({ unsent: false, connectionError: false });
    expect(fine1.result!.payload.toString()).toBe('fine');
    // Answers: this gateway accepts 8 KiB frames; the node answers an oversized reply with an error instead.
    const roomy = await serve();
    const l2 = link(roomy.port, { connections: 1, maxFrameBytes: 8192 });
    const [bigReply, fine2] = await Promise.all([callOnce(l2, nodeCall('big', '20000')), callOnce(l2, nodeCall('echo', 'fine'))]);
    expect(bigReply.failure!.error.code).toBe(Code.INTERNAL);
    expect(bigReply.failure!.error.message).toMatch(/larger than the gateway accepts/);
    expect(fine2.result!.payload.toString()).toBe('fine');
    expect(l1.readyConnections + l2.readyConnections).toBe(2);
  });

  it('passes large payloads through intact, many at once', async () => {
    const server = await serve();
    const l = link(server.port);
    const payloads = Array.from({ length: 12 }, (_, i) => Buffer.alloc(1024 * 1024 + i, i));
    const outs = await Promise.all(payloads.map((p) => callOnce(l, nodeCall('echo', p))));
    outs.forEach((o, i) => expect(o.result!.payload.equals(payloads[i]!)).toBe(true));
  });

  it('a node that cannot be reached fails calls as unsent connection errors', async () => {
    const server = await serve();
    const port = server.port;
    await server.close();
    const l = link(port);
    const out = await callOnce(l, nodeCall('echo', 'x'));
    expect(out.failure!.error.code).toBe(Code.UNAVAILABLE);
    expect(out.failure).toMatchObject({ unsent: true, connectionError: true });
    expect(await l.checkHealth(200)).toBe(false);
  });

  it('a request still in the write batch when the link closes is unsent; one already written is not', async () => {
    const seen: NodeObservations = { started: [], aborted: [] };
    const server = await serve({}, seen);
    const l = new BinaryNodeLink(`relaygate+tcp://127.0.0.1:${server.port}`);
    await until(() => l.readyConnections === 4, 10_000, 'connections');
    const written = nodeCall('sleep', '20000');
    const first = startCall(l, written);
    await until(() => seen.started.includes(written.requestId), 10_000, 'node to start');
    const queued = startCall(l, nodeCall('echo', 'never sent'));
    await l.close();
    const [a, b] = await Promise.all([first.done, queued.done]);
    expect(a.failure).toMatchObject({ unsent: false, connectionError: true });
    expect(a.failure!.error.code).toBe(Code.UNAVAILABLE);
    expect(b.failure).toMatchObject({ unsent: true, connectionError: true });
    await until(() => seen.aborted.includes(written.requestId), 10_000, 'node to abort the orphaned call');
  });

  it('drain: in-flight calls finish marked drain, new calls fail unsent with drain, health turns false', async () => {
    const functionHost = new FunctionHost(testFunctions(), { log: silentLogger() });
    const server = await serve({ functionHost });
    const l = link(server.port);
    expect(await l.checkHealth(5000)).toBe(true);
    const inflight = startCall(l, nodeCall('sleep', '300'));
    await until(() => server.inFlight === 1, 10_000, 'call to start');
    functionHost.startDraining();
    await until(() => l.isDraining, 10_000, 'drain notice');
    const after = await callOnce(l, nodeCall('echo', 'late'));
    expect(after.failure).toMatchObject({ unsent: true, drain: true });
    const done = await inflight.done;
    expect(done.result!.payload.toString()).toBe('slept 300');
    expect(done.result!.drain).toBe(true);
    expect(await l.checkHealth(1000)).toBe(false);
  });

  it('backpressure: a node that stops reading holds further frames in the batch, and those count as unsent', async () => {
    // A peer that says hello and then never reads: the kernel buffers fill, socket.write reports it.
    const sockets: Socket[] = [];
    const peer = createServer((socket) => {
      sockets.push(socket);
      socket.write(encodeLinkFrame({ id: 0, hello: { version: 1, nodeId: 'stuck', maxInFlight: 10_000 } }));
      socket.pause();
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => peer.close(r));
    });
    const l = link((peer.address() as AddressInfo).port, { connections: 1 });
    await until(() => l.readyConnections === 1, 10_000, 'hello');
    const payload = Buffer.alloc(256 * 1024, 1);
    const started: ReturnType<typeof startCall>[] = [];
    // 40 turns of 8 calls: 80 MiB, far more than socket buffers hold.
    for (let turn = 0; turn < 40; turn++) {
      for (let i = 0; i < 8; i++) started.push(startCall(l, nodeCall('echo', payload)));
      await new Promise((r) => setImmediate(r));
    }
    await l.close();
    const outs = await Promise.all(started.map((s) => s.done));
    const unsent = outs.filter((o) => o.failure?.unsent).length;
    const maybeRun = outs.filter((o) => o.failure && !o.failure.unsent).length;
    expect(unsent + maybeRun).toBe(outs.length);
    expect(maybeRun).toBeGreaterThan(0);
    expect(unsent).toBeGreaterThan(0);
    expect(outs.every((o) => o.terminals === 1 && o.failure!.error.code === Code.UNAVAILABLE)).toBe(true);
  });

  it('backpressure at the node: a gateway that never reads its answers is not read from either', async () => {
    const server = await serve();
    const socket = connect(server.port, '127.0.0.1');
    cleanup.push(async () => { socket.destroy(); });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.pause(); // never read the node's answers
    socket.write(encodeLinkFrame({ id: 0, hello: { version: 1, gatewayId: 'flooder' } }));
    const payload = Buffer.alloc(256 * 1024, 3);
    for (let id = 1; id <= 200; id++) {
      socket.write(encodeLinkFrame({ id, request: { function: 'echo', payload, contentType: '', deadlineMs: 60_000, subject: '', tenant: '', metadata: {}, requestId: `r${id}` } }));
    }
    // 50 MiB offered; once its own writes block, the node stops reading, so most stays with us.
    await new Promise((r) => setTimeout(r, 1500));
    expect(socket.writableLength).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('reconnects after the node restarts on the same port', async () => {
    const first = await serve();
    const port = first.port;
    const l = link(port);
    expect((await callOnce(l, nodeCall('echo', 'one'))).result!.payload.toString()).toBe('one');
    await first.close();
    await until(() => l.readyConnections === 0, 10_000, 'link to notice');
    await serve({ port, id: 'node-a2' });
    await until(() => l.readyConnections === 4, 15_000, 'reconnect');
    const again = await callOnce(l, nodeCall('echo', 'two'));
    expect(again.result).toMatchObject({ nodeId: 'node-a2' });
    expect(await l.checkHealth(5000)).toBe(true);
  });

  it('runs over TLS (relaygate+tls://)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relaygate-link-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = await serve({ tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
    const l = link(server.port, { tls: { ca: cert } }, 'relaygate+tls');
    const out = await callOnce(l, nodeCall('echo', 'over tls'));
    expect(out.result!.payload.toString()).toBe('over tls');
    const untrusted = link(server.port, { connectTimeoutMs: 2000 }, 'relaygate+tls');
    const refused = await callOnce(untrusted, nodeCall('echo', 'x'));
    expect(refused.failure).toMatchObject({ unsent: true, connectionError: true });
  });
});
