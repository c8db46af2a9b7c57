// RedisBus on a real three-primary Redis Cluster started from redis-server: sharded pub/sub,
// slot-local history scripts, and delivery across a slot migration.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RedisBus } from '../../src/bus/redis-bus.js';
import { hashSlot } from '../../src/bus/slot.js';
import { silentLogger } from '../../src/log.js';
import { encodeEvent } from '../../src/protocol/codec.js';
import { body, busContract, RecordingHandler, type BusFactory } from '../contract/bus.case.js';
import { clusterFor } from '../helpers/redis.js';

const given = clusterFor();

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function clusterBus(prefix: string): Promise<RedisBus> {
  const bus = new RedisBus({
    url: given.cluster.seeds, cluster: true, prefix, heartbeatMs: 250, probeMs: 400,
    instanceId: randomBytes(3).toString('hex'), log: silentLogger(),
  });
  await until('cluster bus ready', () => bus.ready());
  return bus;
}

busContract('RedisBus on Redis Cluster', (): BusFactory => {
  const made: RedisBus[] = [];
  const prefix = `rgc-${randomBytes(4).toString('hex')}`;
  return {
    make: async () => {
      const bus = await clusterBus(prefix);
      made.push(bus);
      return bus;
    },
    cleanup: async () => {
      await Promise.all(made.map((b) => b.close()));
    },
  };
});

describe('RedisBus on Redis Cluster', () => {
  it('hashes the channel and its history keys to one slot', async () => {
    const channel = 'relaygate:acme:orders/1';
    expect(hashSlot(`{${channel}}:stream`)).toBe(hashSlot(channel));
    expect(hashSlot(`{${channel}}:meta`)).toBe(hashSlot(channel));
    // Known values (redis-cli CLUSTER KEYSLOT).
    expect(hashSlot('foo')).toBe(12182);
    expect(hashSlot('{user1000}.following')).toBe(hashSlot('user1000'));
    const owner = await given.cluster.ownerOf(hashSlot(channel));
    expect(Number((await owner.cli('CLUSTER', 'KEYSLOT', channel)).trim())).toBe(hashSlot(channel));
  });

  it('proves delivery through every shard with one probe channel per primary', async () => {
    const bus = await clusterBus(`rgc-${randomBytes(4).toString('hex')}`);
    try {
      const perNode = await Promise.all(given.cluster.nodes.map(async (n) => (await n.cli('PUBSUB', 'SHARDCHANNELS', '*#probe*')).trim().split('\n').filter(Boolean)));
      expect(perNode.map((channels) => channels.length)).toEqual([1, 1, 1]);
    } finally {
      await bus.close();
    }
  });

  it('uses SSUBSCRIBE on the owning shard, takes raw SPUBLISH, and keeps delivering across a slot migration', async () => {
    const prefix = `rgc-${randomBytes(4).toString('hex')}`;
    const sub = await clusterBus(prefix);
    const pub = await clusterBus(prefix);
    try {
      const got = new RecordingHandler();
      sub.setHandler(got);
      await sub.subscribe('acme', 'moving/topic');
      await sub.subscribe('acme', 'plain/topic');
      const channel = sub.channel('acme', 'moving/topic');
      const slot = hashSlot(channel);
      const owner = await given.cluster.ownerOf(slot);
      const shardSubscribers = async (node: typeof owner): Promise<string> => (await node.cli('PUBSUB', 'SHARDNUMSUB', channel)).trim().split('\n').at(-1)!;
      expect(await shardSubscribers(owner)).toBe('1');

      const retention = { size: 100, ttlMs: 60_000 };
      const before = await pub.publish('acme', 'moving/topic', body('before'), retention);
      const backend = owner.client();
      await backend.spublish(channel, Buffer.from(encodeEvent({ topic: 'x', payload: Buffer.from('raw'), publishedMs: 0 })));
      backend.disconnect();
      await got.waitFor(2);

      const target = given.cluster.nodes.find((n) => n !== owner)!;
      await given.cluster.migrateSlot(slot, target);
      expect(await given.cluster.ownerOf(slot)).toBe(target);

      // Publishing continues; once the subscriber has followed the slot, events arrive again.
      let n = 0;
      await until('delivery after the migration', async () => {
        await pub.publish('acme', 'moving/topic', body(`after ${n++}`), retention).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
        return got.payloads('moving/topic').some((p) => p.startsWith('after'));
      }, 30_000);
      expect(await shardSubscribers(target)).toBe('1');
      expect(await shardSubscribers(owner)).toBe('0');
      const history = await pub.history('acme', 'moving/topic', 0);
      expect(history.epoch).toBe(before!.epoch); // the stream moved with its slot
      expect(history.events[0]!.position).toEqual(before);

      await pub.publish('acme', 'plain/topic', body('elsewhere'));
      await until('other topics unaffected', () => got.payloads('plain/topic').length === 1);
    } finally {
      await Promise.all([sub.close(), pub.close()]);
    }
  });

  it('reports not ready within seconds when the shard of a subscribed topic freezes, and recovers when it thaws', async () => {
    const prefix = `rgc-${randomBytes(4).toString('hex')}`;
    const sub = await clusterBus(prefix);
    const pub = await clusterBus(prefix);
    const got = new RecordingHandler();
    sub.setHandler(got);
    await sub.subscribe('acme', 'frozen/shard');
    const owner = await given.cluster.ownerOf(hashSlot(sub.channel('acme', 'frozen/shard')));
    owner.pause();
    const frozenAt = Date.now();
    try {
      // The subscribing instance's heartbeat finds its link to the frozen shard silent; both
      // instances' delivery probes through that shard stop coming back.
      await until('both instances not ready', () => !sub.ready() && !pub.ready(), 15_000);
      expect(Date.now() - frozenAt).toBeLessThan(10_000);
    } finally {
      owner.resume();
    }
    try {
      await given.cluster.waitHealthy(30_000);
      await until('ready after the thaw', () => sub.ready() && pub.ready(), 30_000);
      let n = 0;
      await until('delivery after the thaw', async () => {
        await pub.publish('acme', 'frozen/shard', body(`thawed ${n++}`)).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
        return got.payloads('frozen/shard').length > 0;
      }, 30_000);
    } finally {
      await Promise.all([sub.close(), pub.close()]);
    }
  });
});
