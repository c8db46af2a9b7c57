// How the gateway reads what nodes send back, against real HTTP servers that misbehave on purpose:
// streams cut or garbled, error statuses with Retry-After, drain headers, refused and reset connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodePoolCompute } from '../../src/balancer/compute-service.js';
import { Code } from '../../src/errors.js';
import { encodeDelimitedNodeFrame, NODE_STREAM_CONTENT_TYPE } from '../../src/nodes/node-stream.js';
import { createNode } from '../../src/node/index.js';
import { computeFor, invoke, text } from '../helpers/compute.js';
import { freePort } from '../helpers/redis.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A node whose every invoke is answered by `handler`; counts the invokes that arrived. */
async function misbehavingNode(handler: Handler): Promise<{ url: string; arrived: () => number; close: () => Promise<void> }> {
  let arrived = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/healthz') {
      res.end('ok');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      arrived++;
      handler(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived: () => arrived,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const frame = (f: Parameters<typeof encodeDelimitedNodeFrame>[0]): Buffer => encodeDelimitedNodeFrame(f);
const progress = (fraction: number): Buffer => frame({ progress: { fraction, payload: Buffer.from(`p${fraction}`) } });

describe('node replies', () => {
  const nodes: { close: () => Promise<void> }[] = [];
  const computes: NodePoolCompute[] = [];
  afterAll(async () => {
    await Promise.all(computes.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.close()));
  });
  const single = async (handler: Handler, env: Record<string, string> = {}) => {
    const node = await misbehavingNode(handler);
    nodes.push(node);
    const compute = computeFor([node.url], env);
    computes.push(compute);
    return { node, compute };
  };

  it('a stream that ends cleanly without a result is INTERNAL, after its progress', async () => {
    const { compute } = await single((_req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      res.end(Buffer.concat([progress(0.25), progress(0.5)]));
    });
    const answer = invoke(compute, 'f', '');
    await answer.done;
    expect(answer.progress.map((p) => p.fraction)).toEqual([0.25, 0.5]);
    expect(answer.error?.code).toBe(Code.INTERNAL);
    expect(answer.error?.message).toMatch(/without a result or error/);
    expect(answer.terminals).toBe(1);
  });

  it('a stream whose connection dies mid-frame is UNAVAILABLE (it may have run)', async () => {
    const { node, compute } = await single((_req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      const result = frame({ result: { payload: Buffer.alloc(1000, 1) } });
      res.write(Buffer.concat([progress(0.5), result.subarray(0, 10)]));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const answer = invoke(compute, 'f', '');
    await answer.done;
    expect(answer.progress).toHaveLength(1);
    expect(answer.error?.code).toBe(Code.UNAVAILABLE);
    expect(node.arrived()).toBe(1); // never sent again
  });

  it('garbage or an oversized frame in a stream is INTERNAL, and the call ends at once', async () => {
    const { compute } = await single((req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      // A 1 GiB length prefix, then nothing: refused on sight, not buffered until the deadline.
      if (req.url!.endsWith('/huge')) res.write(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04]));
      else res.end(Buffer.from([3, 0xff, 0xff, 0xff]));
    }, { RELAYGATE_INVOKE_TIMEOUT: '30s' });
    const garbage = invoke(compute, 'garbage', '');
    const huge = invoke(compute, 'huge', '', { timeoutMs: 30_000 });
    await Promise.all([garbage.done, huge.done]);
    expect(garbage.error?.code).toBe(Code.INTERNAL);
    expect(huge.error?.code).toBe(Code.INTERNAL);
    expect(huge.error?.message).toMatch(/exceeds the limit/);
  });

  it('a streamed result may name the node; without any name the base URL is used', async () => {
    const { node, compute } = await single((req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      const nodeId = req.url!.endsWith('/named') ? 'from-frame' : '';
      res.end(Buffer.concat([progress(1), frame({ result: { payload: Buffer.from('ok'), contentType: 'text/x-ok', nodeId, durationMs: 7 } })]));
    });
    const named = invoke(compute, 'named', '');
    const anonymous = invoke(compute, 'anonymous', '');
    await Promise.all([named.done, anonymous.done]);
    expect(named.result).toMatchObject({ contentType: 'text/x-ok', nodeId: 'from-frame', durationMs: 7 });
    expect(text(named.result)).toBe('ok');
    expect(anonymous.result?.nodeId).toBe(node.url);
  });

  it('streamed replies hand their connection back (one connection carries call after call)', async () => {
    const { node, compute } = await single((req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      res.write(progress(0.5));
      const tail = req.url!.endsWith('/trailing') ? progress(1) : Buffer.alloc(0);
      setTimeout(() => res.end(Buffer.concat([frame({ result: { payload: Buffer.from('done') } }), tail])), 5);
    }, { RELAYGATE_NODE_CONNECTIONS: '1' });
    for (let i = 0; i < 5; i++) {
      // A node that sends bytes after its terminal frame gets its connection closed, not reused.
      const answer = invoke(compute, i === 2 ? 'trailing' : 'f', '', { timeoutMs: 5_000 });
      await answer.done;
      expect(text(answer.result)).toBe('done');
      expect(answer.terminals).toBe(1);
    }
    expect(node.arrived()).toBe(5);
  });

  it('a streamed error frame keeps its code and retry_after_ms', async () => {
    const { compute } = await single((_req, res) => {
      res.writeHead(200, { 'content-type': NODE_STREAM_CONTENT_TYPE });
      res.end(Buffer.concat([progress(0.1), frame({ error: { code: Code.RESOURCE_EXHAUSTED, message: 'quota', retryAfterMs: 1500 } })]));
    });
    const answer = invoke(compute, 'f', '');
    await answer.done;
    expect(answer.error).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, message: 'quota', retryAfterMs: 1500 });
  });

  it('maps error statuses with Retry-After and the node\'s message', async () => {
    const { compute } = await single((req, res) => {
      const status = Number(req.url!.split('/').pop());
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (status === 429) headers['retry-after'] = '3';
      if (status === 503) headers['retry-after'] = new Date(Date.now() + 10_000).toUTCString();
      res.writeHead(status, headers);
      res.end(JSON.stringify({ code: 'X', message: `status ${status}` }));
    }, { RELAYGATE_EJECT_AFTER: '100' });
    const cases: [number, number][] = [[400, Code.INVALID_ARGUMENT], [404, Code.NOT_FOUND], [408, Code.DEADLINE_EXCEEDED], [429, Code.RESOURCE_EXHAUSTED], [500, Code.INTERNAL], [503, Code.UNAVAILABLE], [504, Code.DEADLINE_EXCEEDED]];
    const answers = cases.map(([status]) => invoke(compute, String(status), ''));
    await Promise.all(answers.map((a) => a.done));
    answers.forEach((answer, i) => {
      expect(answer.error?.code).toBe(cases[i]![1]);
      expect(answer.error?.message).toBe(`status ${cases[i]![0]}`);
    });
    expect(answers[3]!.error!.retryAfterMs).toBe(3_000);
    expect(answers[5]!.error!.retryAfterMs).toBeGreaterThan(8_000);
    expect(answers[5]!.error!.retryAfterMs).toBeLessThanOrEqual(10_000);
  });

  it('a node answering x-relaygate-drain: 1 leaves the rotation at once', async () => {
    const { compute } = await single((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-relaygate-drain': '1' });
      res.end('last one');
    }, { RELAYGATE_HEALTH_INTERVAL: '30s' });
    const answer = invoke(compute, 'f', '');
    await answer.done;
    expect(text(answer.result)).toBe('last one');
    expect(compute.snapshot()[0]).toMatchObject({ draining: true, inRotation: false });
    expect(compute.ready()).toBe(false);
  });

  it('a refused connection is retried on another node; a connection reset after sending is not', async () => {
    const deadPort = await freePort(); // nothing listens here
    const good = await misbehavingNode((_req, res) => res.end('fine'));
    const resetting = await misbehavingNode((_req, res) => res.socket?.destroy());
    nodes.push(good, resetting);
    const registry = new Registry();
    // Health checks every 30 s: the dead node stays in rotation until calls find out.
    const compute = computeFor([`http://127.0.0.1:${deadPort}`, good.url], { RELAYGATE_HEALTH_INTERVAL: '30s', RELAYGATE_EJECT_AFTER: '100' }, registry);
    computes.push(compute);
    // Sent before the first health check answers, so half of them are balanced onto the dead node.
    const answers = Array.from({ length: 6 }, () => invoke(compute, 'f', ''));
    await Promise.all(answers.map((a) => a.done));
    for (const a of answers) expect(text(a.result)).toBe('fine');
    expect(good.arrived()).toBe(6);
    const retries = await registry.getSingleMetricAsString('relaygate_node_retries_total');
    expect(retries).toMatch(new RegExp(`relaygate_node_retries_total\\{node="http://127.0.0.1:${deadPort}"\\} 3`));

    const resetCompute = computeFor([resetting.url, good.url], { RELAYGATE_HEALTH_INTERVAL: '30s', RELAYGATE_EJECT_AFTER: '100' });
    computes.push(resetCompute);
    const before = good.arrived();
    const resetAnswers = Array.from({ length: 6 }, () => invoke(resetCompute, 'f', ''));
    await Promise.all(resetAnswers.map((a) => a.done));
    const reset = resetAnswers.filter((a) => a.error);
    expect(reset.length).toBe(resetting.arrived());
    for (const a of reset) expect(a.error?.code).toBe(Code.UNAVAILABLE);
    expect(good.arrived() - before + resetting.arrived()).toBe(6); // each call arrived exactly once
  });

  it('an SDK function reporting progress after it returned does not disturb the node', async () => {
    let late: Promise<void> | undefined;
    const sdkNode = createNode({
      functions: {
        quick: (req) => {
          late = new Promise((resolve) => setTimeout(() => { req.progress(0.9, 'too late'); resolve(); }, 20));
          return 'done';
        },
        streaming: async (req) => {
          req.progress(0.5);
          setTimeout(() => req.progress(0.99, 'after the end'), 20);
          return 'streamed';
        },
      },
    });
    const { url } = await sdkNode.listen({ host: '127.0.0.1' });
    nodes.push({ close: () => sdkNode.close() });
    const compute = computeFor([url]);
    computes.push(compute);
    const [quick, streaming] = [invoke(compute, 'quick', ''), invoke(compute, 'streaming', '')];
    await Promise.all([quick.done, streaming.done]);
    await late;
    await new Promise((r) => setTimeout(r, 50));
    expect(text(quick.result)).toBe('done');
    expect(quick.progress).toEqual([]);
    expect(text(streaming.result)).toBe('streamed');
    expect(streaming.progress.map((p) => p.fraction)).toEqual([0.5]);
    const again = invoke(compute, 'quick', '');
    await again.done;
    expect(text(again.result)).toBe('done');
  });
});
