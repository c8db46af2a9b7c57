// Dynamic membership through a real Redis: nodes register, gateways learn joins and leaves at once,
// and a node that stops heartbeating is gone within two heartbeat periods.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodePoolCompute } from '../../src/balancer/compute-service.js';
import { Code } from '../../src/errors.js';
import { registryKeys } from '../../src/nodes/registration.js';
import { computeFor, invoke, text } from '../helpers/compute.js';
import { spawnReferenceNode, waitUntil, type NodeProcess } from '../helpers/nodes.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

const REDIS_URL = process.env.RELAYGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const HEARTBEAT_MS = 500;

describe('Redis node registry', () => {
  const prefix = `rgtest-registry-${process.pid}-${Date.now()}`;
  const keys = registryKeys(prefix);
  const env = { RELAYGATE_REDIS_URL: REDIS_URL, RELAYGATE_REDIS_PREFIX: prefix, RELAYGATE_REGISTRY_HEARTBEAT: `${HEARTBEAT_MS}ms` };
  let redis: Redis;
  let compute: NodePoolCompute;
  const nodes: NodeProcess[] = [];

  const spawn = async (id: string): Promise<NodeProcess> => {
    const node = await spawnReferenceNode({ ...env, RELAYGATE_NODE_ID: id, RELAYGATE_NODE_WEIGHT: '2' });
    nodes.push(node);
    return node;
  };
  const known = (c: NodePoolCompute, id: string) => c.snapshot().find((n) => n.key === id);

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    compute = computeFor([], env);
    await compute.start();
  });
  afterAll(async () => {
    await compute?.close();
    await Promise.all(nodes.map((n) => n.kill()));
    const leftovers = await redis.keys(`{${prefix}}*`);
    if (leftovers.length > 0) await redis.del(...leftovers);
    redis.disconnect();
  });

  it('learns a joining node at once, with its weight and functions', async () => {
    expect(compute.ready()).toBe(false);
    const started = Date.now();
    await spawn('dyn-1');
    await waitUntil(() => known(compute, 'dyn-1') !== undefined, 10_000, 'dyn-1 known');
    const joinedAfter = Date.now() - started;
    const node = known(compute, 'dyn-1')!;
    expect(node.weight).toBe(2);
    expect(node.functions).toEqual(['echo', 'sha256', 'sort', 'matmul', 'primes', 'sleep']);
    expect(joinedAfter).toBeLessThan(10_000);
    await waitUntil(() => compute.ready(), 5_000, 'ready');

    const answer = invoke(compute, 'sha256', 'abc');
    await answer.done;
    expect(answer.result?.nodeId).toBe('dyn-1');
    expect(text(answer.result)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    // A function no registered node serves is refused without asking any node.
    const missing = invoke(compute, 'no-such-function', '');
    await missing.done;
    expect(missing.error?.code).toBe(Code.NOT_FOUND);
    expect(missing.error?.message).toMatch(/no node serves/);
  });

  it('a gateway starting later reads the registry and knows the node before its first call', async () => {
    const late = computeFor([], env);
    try {
      await late.start();
      expect(known(late, 'dyn-1')).toBeDefined();
      // Nodes already registered are taken as warm: no slow start for them.
      expect(known(late, 'dyn-1')!.effectiveWeight).toBe(2);
    } finally {
      await late.close();
    }
  });

  it('a draining node (SIGTERM) deregisters and is dropped at once', async () => {
    const node = nodes.find((n) => n.logs.some((l) => l.msg === 'registered'))!;
    expect(await redis.exists(keys.node('dyn-1'))).toBe(1);
    const stopped = Date.now();
    expect(await node.stop()).toBe(0);
    await waitUntil(() => known(compute, 'dyn-1') === undefined, 5_000, 'dyn-1 dropped');
    expect(Date.now() - stopped).toBeLessThan(5_000);
    expect(await redis.exists(keys.node('dyn-1'))).toBe(0);
    expect(await redis.sismember(keys.set, 'dyn-1')).toBe(0);
  });

  it('a node killed without warning is gone within two heartbeat periods', async () => {
    const node = await spawn('dyn-2');
    await waitUntil(() => known(compute, 'dyn-2') !== undefined, 10_000, 'dyn-2 known');
    await node.kill();
    const killed = Date.now();
    await waitUntil(() => known(compute, 'dyn-2') === undefined, 10_000, 'dyn-2 dropped');
    // Two periods plus room for a loaded machine (the bound is generous, the design target is 2 × 500 ms).
    expect(Date.now() - killed).toBeLessThan(2 * HEARTBEAT_MS + 2_000);
  });

  it('ignores malformed registry messages', async () => {
    await redis.publish(keys.channel, 'garbage');
    await redis.publish(keys.channel, JSON.stringify({ type: 'join', node: { id: 'x', url: 'ftp://nope', functions: [] } }));
    const node = await spawn('dyn-3');
    await waitUntil(() => known(compute, 'dyn-3') !== undefined, 10_000, 'dyn-3 known');
    expect(known(compute, 'x')).toBeUndefined();
    await node.kill();
  });
});

describe('Redis node registry across a Redis restart', () => {
  let server: RedisServer;
  let compute: NodePoolCompute;
  const nodes: NodeProcess[] = [];
  const prefix = `rgtest-restart-${process.pid}`;

  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await compute?.close();
    await Promise.all(nodes.map((n) => n.kill()));
    await server?.stop();
  });

  it('keeps serving known nodes while Redis is down and learns again once it is back', async () => {
    const env = { RELAYGATE_REDIS_URL: server.url, RELAYGATE_REDIS_PREFIX: prefix, RELAYGATE_REGISTRY_HEARTBEAT: `${HEARTBEAT_MS}ms` };
    compute = computeFor([], env);
    await compute.start();
    nodes.push(await spawnReferenceNode({ ...env, RELAYGATE_NODE_ID: 'steady' }));
    await waitUntil(() => compute.snapshot().some((n) => n.key === 'steady'), 10_000, 'steady known');

    await server.kill();
    // Several heartbeat periods without Redis: a node that cannot be asked about is not dropped.
    await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
    expect(compute.snapshot().map((n) => n.key)).toEqual(['steady']);
    const during = invoke(compute, 'sha256', 'x');
    await during.done;
    expect(during.result?.nodeId).toBe('steady');

    // An empty Redis comes back: the node re-registers with its next heartbeat, the gateway's
    // subscription resumes, and a node joining afterwards is learned as before.
    let steadyMissing = 0;
    const watch = setInterval(() => { if (!compute.snapshot().some((n) => n.key === 'steady')) steadyMissing++; }, 20);
    try {
      await server.restart();
      nodes.push(await spawnReferenceNode({ ...env, RELAYGATE_NODE_ID: 'after' }));
      await waitUntil(() => compute.snapshot().some((n) => n.key === 'after'), 20_000, 'node joining after the restart known');
      await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS));
    } finally {
      clearInterval(watch);
    }
    // The live node never dropped out, not even while the restarted Redis was still empty.
    expect(steadyMissing).toBe(0);
  });
});

describe('Redis node registry on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let compute: NodePoolCompute;
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    cluster = await RedisCluster.start();
  });
  afterAll(async () => {
    await compute?.close();
    await Promise.all(nodes.map((n) => n.kill()));
    await cluster?.stop();
  });

  it('registers, learns and drops nodes with the cluster seeds', async () => {
    const env = {
      RELAYGATE_REDIS_URL: cluster.seeds, RELAYGATE_REDIS_CLUSTER: '1', RELAYGATE_REDIS_PREFIX: `rgtest-cluster-${process.pid}`,
      RELAYGATE_REGISTRY_HEARTBEAT: `${HEARTBEAT_MS}ms`,
    };
    compute = computeFor([], env);
    await compute.start();
    const node = await spawnReferenceNode({ ...env, RELAYGATE_NODE_ID: 'clustered' });
    nodes.push(node);
    await waitUntil(() => compute.snapshot().some((n) => n.key === 'clustered'), 15_000, 'clustered known');
    const answer = invoke(compute, 'sha256', 'abc');
    await answer.done;
    expect(answer.result?.nodeId).toBe('clustered');
    // A gateway starting now reads the registry (SMEMBERS + MGET in one hash slot).
    const late = computeFor([], env);
    try {
      await late.start();
      expect(late.snapshot().map((n) => n.key)).toEqual(['clustered']);
    } finally {
      await late.close();
    }
    expect(await node.stop()).toBe(0);
    await waitUntil(() => compute.snapshot().length === 0, 10_000, 'clustered dropped');
  });
});
