// The Redis bus: events between gateway instances over Redis pub/sub (sharded pub/sub on a cluster),
// history in Redis Streams. Separate publisher and subscriber links; one SUBSCRIBE per topic channel
// per instance, batched per tick; never a pattern subscription. Every link is watched by an
// application-level PING (half-open detection, link-watch.ts) and the whole path by delivery probes.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { Code, GatewayError } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeEvent, encodeEvent } from '../protocol/codec.js';
import type { EventBody, StreamPosition } from '../protocol/frames.js';
import type { Bus, BusHandler, HistoryRetention, HistoryState } from './bus.js';
import { newEpoch } from './memory-bus.js';
import { LinkWatch } from './link-watch.js';
import { BusMetrics } from './metrics.js';
import { appendScript, readScript } from './redis-scripts.js';
import { hashSlot } from './slot.js';

/** The slice of settings the Redis bus reads (RELAYGATE_REDIS_*, RELAYGATE_BUS_*). */
export interface RedisBusOptions {
  /** redis://host:port (or, with `cluster`, a comma-separated list of seed nodes). */
  readonly url: string;
  /** Use Redis Cluster with sharded pub/sub (SSUBSCRIBE/SPUBLISH). */
  readonly cluster: boolean;
  /** Channel and key prefix: channel = prefix:tenant:topic. */
  readonly prefix: string;
  /** PING interval on each link; a link silent for HEARTBEAT_MISSES intervals is torn down and redialled. */
  readonly heartbeatMs: number;
  /** Delivery probe interval; readiness requires the last probe to have come back. */
  readonly probeMs: number;
  /** Names this instance's private probe channel and its connections. */
  readonly instanceId: string;
  readonly log: Logger;
  readonly metrics?: BusMetrics;
}

/** Unanswered heartbeat intervals after which a link counts as dead. */
const HEARTBEAT_MISSES = 3;
/** Channels per SUBSCRIBE/UNSUBSCRIBE command. */
const BATCH = 500;
const RETRY_AFTER_MS = 1000;

interface Target {
  readonly tenant: string;
  readonly topic: string;
}
const PROBE: Target = { tenant: '', topic: '' };

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

type AppendReply = [number, Buffer];
type ReadReply = [Buffer, number, Array<[Buffer, Buffer[]]>];
interface ScriptCommands {
  rgAppend(stream: string, meta: string, channel: string, size: number, ttlMs: number, epoch: string, event: Buffer, command: string): Promise<AppendReply>;
  rgReadBuffer(stream: string, meta: string, from: string): Promise<ReadReply>;
}
type Client = (Redis | Cluster) & ScriptCommands;

function unavailable(cause: unknown): GatewayError {
  return new GatewayError(Code.UNAVAILABLE, 'event bus unavailable', { cause, retryAfterMs: RETRY_AFTER_MS });
}

/** Reconnect delay: exponential from 50 ms to 2 s, with jitter so gateways do not reconnect in step. */
function backoff(attempt: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/** Bus over Redis shared by every gateway instance: at-most-once delivery, ordered per topic per publisher. */
export class RedisBus implements Bus {
  private handler: BusHandler | undefined;
  private readonly pub: Client;
  private readonly sub: Redis | Cluster;
  private readonly log: Logger;
  private readonly metrics: BusMetrics;
  private readonly probeChannel: string;

  /** Channels this instance wants, and whom they carry for. */
  private readonly desired = new Map<string, Target>();
  /** Channels a SUBSCRIBE was sent for on the current link, with the send's sequence number. */
  private readonly sent = new Map<string, number>();
  /** Channels whose SUBSCRIBE the current link confirmed. */
  private readonly confirmed = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private sequence = 0;
  private flushScheduled = false;

  private subReady = false;
  private everReady = false;
  private probeSeq = 0;
  /** Probe channels (one per shard on a cluster) -> the probe in flight on each. */
  private readonly probeOutstanding = new Map<string, { seq: number; sentAt: number }>();
  /** Probe channels whose last probe came back in time. */
  private readonly probePassed = new Set<string>();
  private probeChannels: string[];
  private readonly liveness: LinkWatch;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private malformedLoggedAt = 0;
  private readonly commandTimeoutMs: number;
  /** The publisher's socket, corked while this turn's commands gather (single-node Redis only). */
  private corked: { uncork(): void } | undefined;
  private readonly uncorkNow = (): void => {
    this.corked?.uncork();
    this.corked = undefined;
  };

  constructor(private readonly options: RedisBusOptions) {
    this.log = options.log;
    this.metrics = options.metrics ?? new BusMetrics();
    this.probeChannel = `${options.prefix}:#probe:${options.instanceId}`;
    this.probeChannels = [this.probeChannel];
    this.desired.set(this.probeChannel, PROBE);

    // Commands fail fast while a link is down (no offline queue, no resend after a reconnect):
    // a publish is acknowledged only when Redis took it, and never sent twice.
    // A backstop only: dead links are found by the heartbeat long before this.
    this.commandTimeoutMs = Math.max(10_000, options.heartbeatMs * (HEARTBEAT_MISSES + 2));
    this.liveness = new LinkWatch({
      intervalMs: options.heartbeatMs, misses: HEARTBEAT_MISSES, log: options.log,
      links: () => this.links(), onChange: () => this.updateReady(),
    });
    const failFast: RedisOptions = {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 5000,
      commandTimeout: this.commandTimeoutMs,
      retryStrategy: backoff,
    };
    if (options.cluster) {
      const seeds = options.url.split(',').map((s) => s.trim()).filter(Boolean);
      // No `enableOfflineQueue: false` here: on a Cluster it makes ioredis reorder commands. A
      // cluster that is not ready is refused in publish() instead, and commands are bounded by a timeout.
      const common: ClusterOptions = {
        clusterRetryStrategy: backoff,
        slotsRefreshInterval: 2000,
        retryDelayOnMoved: 50,
      };
      // Node connections open lazily; commands wait in order for their node's connection (a failed
      // first attempt would be retried behind later commands and reorder a topic's events).
      this.pub = new Cluster(seeds, {
        ...common,
        redisOptions: {
          autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0, connectTimeout: 5000,
          commandTimeout: this.commandTimeoutMs, connectionName: `relaygate-pub-${options.instanceId}`,
        },
      }) as Client;
      this.sub = new Cluster(seeds, {
        ...common,
        shardedSubscribers: true,
        redisOptions: { connectTimeout: 5000, connectionName: `relaygate-sub-${options.instanceId}` },
      });
      this.sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
      // The cluster client resubscribes by itself after slot moves and node changes.
      this.sub.on('-subscriber', () => this.handler?.onBreak());
      this.sub.on('subscribersReady', () => this.onClusterResubscribed());
    } else {
      this.pub = new Redis(options.url, { ...failFast, connectionName: `relaygate-pub-${options.instanceId}` }) as Client;
      this.sub = new Redis(options.url, { ...failFast, commandTimeout: undefined, autoResubscribe: false, connectionName: `relaygate-sub-${options.instanceId}` });
      this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel, message));
    }
    this.pub.defineCommand('rgAppend', { numberOfKeys: 2, lua: appendScript });
    this.pub.defineCommand('rgRead', { numberOfKeys: 2, lua: readScript });

    this.watch(this.pub, 'publisher');
    this.watch(this.sub, 'subscriber');
    this.sub.on('ready', () => this.onSubscriberReady());
    this.sub.on('close', () => this.onSubscriberDown());
    // The probe channel may be confirmed before the publisher link is up; the probe that found
    // it down would otherwise wait a whole probe interval, and readiness with it.
    this.pub.on('ready', () => this.probe());

    this.timers.push(setInterval(() => {
      if (!this.closed) this.liveness.beat();
    }, options.heartbeatMs));
    this.timers.push(setInterval(() => this.probe(), options.probeMs));
    for (const t of this.timers) t.unref();
  }

  setHandler(handler: BusHandler): void {
    this.handler = handler;
  }

  /** The Redis channel of a tenant's topic (spec section 7). */
  channel(tenant: string, topic: string): string {
    return `${this.options.prefix}:${tenant}:${topic}`;
  }

  subscribe(tenant: string, topic: string): Promise<void> {
    if (this.closed) return Promise.reject(unavailable(new Error('bus closed')));
    const channel = this.channel(tenant, topic);
    if (this.confirmed.has(channel)) {
      // Still listening (an unsubscribe from this same tick, not yet sent, is called off).
      this.desired.set(channel, { tenant, topic });
      return Promise.resolve();
    }
    if (!this.subReady) return Promise.reject(unavailable(new Error('subscriber link down')));
    this.desired.set(channel, { tenant, topic });
    return new Promise<void>((resolve, reject) => {
      let list = this.waiters.get(channel);
      if (!list) this.waiters.set(channel, (list = []));
      list.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  unsubscribe(tenant: string, topic: string): void {
    const channel = this.channel(tenant, topic);
    if (!this.desired.delete(channel)) return;
    this.rejectWaiters(channel, unavailable(new Error('unsubscribed before confirmation')));
    this.scheduleFlush();
  }

  async publish(tenant: string, topic: string, event: EventBody, retention?: HistoryRetention): Promise<StreamPosition | undefined> {
    this.checkPublisher();
    const channel = this.channel(tenant, topic);
    const bytes = encodeEvent({ ...event, topic, position: undefined });
    const message = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    try {
      if (this.options.cluster) {
        if (!retention) {
          await this.bounded(this.pub.spublish(channel, message));
          return undefined;
        }
        const [stream, meta] = streamKeys(channel);
        const [offset, epoch] = await this.bounded(this.pub.rgAppend(stream, meta, channel, retention.size, retention.ttlMs, newEpoch(), message, 'SPUBLISH'));
        return { offset: Number(offset), epoch: String(epoch) };
      }
      // Single node: ioredis's own command timeout bounds the command (it was sent, nothing waits
      // in a queue), and the turn's commands leave in one write.
      this.corkPublisher();
      if (!retention) {
        await this.pub.publish(channel, message);
        return undefined;
      }
      const [stream, meta] = streamKeys(channel);
      const [offset, epoch] = await this.pub.rgAppend(stream, meta, channel, retention.size, retention.ttlMs, newEpoch(), message, 'PUBLISH');
      return { offset: Number(offset), epoch: String(epoch) };
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Refuses at once while the publisher link is down: nothing is queued for later. */
  private checkPublisher(): void {
    if (this.closed) throw unavailable(new Error('bus closed'));
    if (this.pub.status !== 'ready') throw unavailable(new Error(`publisher link ${this.pub.status}`));
  }

  /**
   * Holds the publisher socket's writes until the end of this loop turn, so the commands of a turn
   * (publishes from many clients, scripts) reach Redis in one write instead of one each. One
   * socket, so their order is kept.
   */
  private corkPublisher(): void {
    if (this.corked) return;
    const socket = (this.pub as Redis).stream as { cork?(): void; uncork(): void } | undefined;
    if (!socket?.cork) return;
    socket.cork();
    this.corked = socket;
    setImmediate(this.uncorkNow);
  }

  /** A command's answer, or a rejection after the command timeout (the command may still run: never reported as done). */
  private bounded<T>(command: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('bus command timed out')), this.commandTimeoutMs);
    });
    return Promise.race([command, timeout]).finally(() => clearTimeout(timer));
  }

  async history(tenant: string, topic: string, after: number): Promise<HistoryState> {
    this.checkPublisher();
    const channel = this.channel(tenant, topic);
    const [stream, meta] = streamKeys(channel);
    let reply: ReadReply;
    try {
      reply = await this.bounded(this.pub.rgReadBuffer(stream, meta, after === Infinity ? '-' : String(after + 1)));
    } catch (err) {
      throw unavailable(err);
    }
    const [epochBuf, top, entries] = reply;
    const epoch = epochBuf.toString();
    const events: EventBody[] = [];
    for (const [, fields] of entries) {
      const bytes = fields[1];
      if (!bytes) continue;
      try {
        events.push({ ...decodeEvent(bytes), topic });
      } catch (err) {
        this.log.error({ err, tenant, topic }, 'unreadable event in history; skipped');
      }
    }
    return { epoch, top: Number(top), events };
  }

  ready(): boolean {
    return !this.closed && this.subReady && this.pub.status === 'ready' && this.liveness.healthy
      && this.probeChannels.every((channel) => this.probePassed.has(channel));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const channel of [...this.waiters.keys()]) this.rejectWaiters(channel, unavailable(new Error('bus closed')));
    this.updateReady();
    // A polite QUIT, but never waiting long on a Redis that does not answer.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([this.pub.quit(), this.sub.quit()]),
      new Promise((resolve) => { timer = setTimeout(resolve, 1000); }),
    ]);
    clearTimeout(timer);
    this.pub.disconnect();
    this.sub.disconnect();
  }

  // --- subscriptions -------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Commands issued in one tick go out together.
    process.nextTick(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** Sends what it takes to make the link's subscriptions equal the desired set; resolves when confirmed. */
  private flush(): Promise<unknown> {
    if (!this.subReady || this.closed) return Promise.resolve();
    const add: string[] = [];
    const drop: string[] = [];
    for (const channel of this.desired.keys()) if (!this.sent.has(channel)) add.push(channel);
    for (const channel of this.sent.keys()) if (!this.desired.has(channel)) drop.push(channel);
    const done: Promise<unknown>[] = [];
    for (const group of this.batches(add)) done.push(this.sendSubscribe(group));
    for (const group of this.batches(drop)) {
      for (const channel of group) {
        this.sent.delete(channel);
        if (this.confirmed.delete(channel)) this.metrics.channels.dec();
      }
      const command = this.options.cluster ? this.sub.sunsubscribe(...group) : this.sub.unsubscribe(...group);
      command.catch((err: unknown) => this.log.debug({ err }, 'unsubscribe not confirmed (link down)'));
    }
    return Promise.all(done);
  }

  /** Groups channels into commands: by slot on a cluster (a sharded command stays within one slot). */
  private batches(channels: string[]): string[][] {
    const out: string[][] = [];
    if (!this.options.cluster) {
      for (let i = 0; i < channels.length; i += BATCH) out.push(channels.slice(i, i + BATCH));
      return out;
    }
    const bySlot = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = hashSlot(channel);
      let group = bySlot.get(slot);
      if (!group || group.length >= BATCH) {
        if (group) out.push(group);
        bySlot.set(slot, (group = []));
      }
      group.push(channel);
    }
    out.push(...bySlot.values());
    return out;
  }

  private sendSubscribe(channels: string[]): Promise<void> {
    const seq = ++this.sequence;
    for (const channel of channels) this.sent.set(channel, seq);
    const command = this.options.cluster ? this.sub.ssubscribe(...channels) : this.sub.subscribe(...channels);
    return command.then(
      () => {
        for (const channel of channels) {
          // A later unsubscribe (or a new link) makes this confirmation stale.
          if (this.sent.get(channel) !== seq || !this.desired.has(channel)) continue;
          if (!this.confirmed.has(channel)) {
            this.confirmed.add(channel);
            this.metrics.channels.inc();
          }
          const list = this.waiters.get(channel);
          this.waiters.delete(channel);
          for (const w of list ?? []) w.resolve();
        }
        if (channels.some((channel) => this.desired.get(channel) === PROBE)) this.probe();
      },
      (err: unknown) => {
        let retry = false;
        for (const channel of channels) {
          if (this.sent.get(channel) !== seq) continue;
          this.sent.delete(channel);
          this.rejectWaiters(channel, unavailable(err));
          retry ||= this.desired.has(channel);
        }
        // Channels still wanted by other subscribers (or the probe) are tried again shortly.
        if (retry && !this.closed) setTimeout(() => this.scheduleFlush(), RETRY_AFTER_MS / 2).unref();
      },
    );
  }

  private rejectWaiters(channel: string, err: Error): void {
    const list = this.waiters.get(channel);
    if (!list) return;
    this.waiters.delete(channel);
    for (const w of list) w.reject(err);
  }

  private topicsListened(): Target[] {
    return [...this.desired.values()].filter((t) => t !== PROBE);
  }

  private onSubscriberReady(): void {
    if (this.closed || this.options.cluster) {
      if (this.options.cluster && !this.closed) this.markSubscriberUp();
      return;
    }
    this.markSubscriberUp();
    const again = this.everReady;
    this.everReady = true;
    void this.flush().then(() => {
      const topics = this.topicsListened();
      if (again && topics.length > 0) this.handler?.onResync(topics);
    });
  }

  private markSubscriberUp(): void {
    if (!this.subReady) this.log.info({ link: 'subscriber' }, 'bus link up');
    this.subReady = true;
    if (this.everReady && !this.options.cluster) this.metrics.reconnects.inc({ link: 'subscriber' });
    this.updateReady();
    if (this.options.cluster) this.scheduleFlush();
  }

  private onSubscriberDown(): void {
    if (this.options.cluster) return; // the cluster client reports per-node trouble and resubscribes itself
    const wasReady = this.subReady;
    this.subReady = false;
    this.liveness.forget('subscriber');
    this.sent.clear();
    this.metrics.channels.set(0);
    this.confirmed.clear();
    for (const channel of [...this.waiters.keys()]) this.rejectWaiters(channel, unavailable(new Error('subscriber link down')));
    if (wasReady) {
      this.handler?.onBreak();
      if (this.topicsListened().length > 0) this.metrics.lostWindows.inc();
      if (!this.closed) this.log.warn({ link: 'subscriber', topics: this.topicsListened().length }, 'bus link down; events on subscribed topics may be lost until it is back');
    }
    this.probePassed.clear();
    this.probeOutstanding.clear();
    this.updateReady();
  }

  private onClusterResubscribed(): void {
    if (this.closed) return;
    this.markSubscriberUp();
    const again = this.everReady;
    this.everReady = true;
    const topics = this.topicsListened();
    if (again && topics.length > 0) {
      this.metrics.lostWindows.inc();
      this.metrics.reconnects.inc({ link: 'subscriber' });
      this.handler?.onResync(topics);
    }
  }

  private onMessage(channelBuf: Buffer, message: Buffer): void {
    const channel = channelBuf.toString();
    const target = this.desired.get(channel);
    if (target === PROBE) return this.onProbe(channel, message);
    if (!target) {
      this.metrics.dropped.inc({ reason: 'unsubscribed' });
      return;
    }
    let event: EventBody;
    try {
      event = decodeEvent(message);
    } catch (err) {
      this.metrics.dropped.inc({ reason: 'malformed' });
      const now = Date.now();
      if (now - this.malformedLoggedAt > 10_000) {
        this.malformedLoggedAt = now;
        this.log.warn({ err, channel, bytes: message.length }, 'malformed event on a bus channel dropped (expected a protobuf relaygate.v1.Event)');
      }
      return;
    }
    // The channel, not the message, decides tenant and topic.
    event.topic = target.topic;
    try {
      this.handler?.onEvent(target.tenant, target.topic, event);
    } catch (err) {
      this.log.error({ err, tenant: target.tenant, topic: target.topic }, 'event handler failed');
    }
  }

  // --- liveness --------------------------------------------------------------------------------

  private watch(client: Redis | Cluster, link: 'publisher' | 'subscriber'): void {
    let down = false;
    client.on('error', (err: Error) => {
      if (!down) this.log.warn({ link, err: err.message }, 'bus link error');
      down = true;
    });
    client.on('ready', () => {
      if (down && link === 'publisher') this.metrics.reconnects.inc({ link });
      down = false;
      this.metrics.connected.set({ link }, 1);
      this.updateReady();
    });
    client.on('close', () => {
      this.metrics.connected.set({ link }, 0);
      this.updateReady();
    });
  }

  /** The links the heartbeat watches: every connection to every node. */
  private links(): Array<[key: string, client: Redis]> {
    if (!this.options.cluster) return [['publisher', this.pub as Redis], ['subscriber', this.sub as Redis]];
    return [
      ...(this.pub as Cluster).nodes('master').map((n): [string, Redis] => [`publisher ${nodeKey(n)}`, n]),
      ...shardedSubscriberLinks(this.sub as Cluster).map((n): [string, Redis] => [`subscriber ${nodeKey(n)}`, n]),
    ];
  }

  /**
   * Publishes a probe to each of this instance's private probe channels (one per shard on a
   * cluster, so every shard's delivery path is proven); readiness needs each back within probeMs.
   */
  private probe(): void {
    if (this.closed) return;
    if (this.options.cluster) this.followShards();
    const now = Date.now();
    const overdue = [...this.probeOutstanding].filter(([, o]) => now - o.sentAt >= this.options.probeMs);
    if (overdue.length > 0) {
      // A probe already received but not yet read (this process was busy) is read in this turn's
      // poll phase: decide after it.
      setImmediate(() => {
        for (const [channel, o] of overdue) {
          if (this.probeOutstanding.get(channel) !== o) continue;
          this.probeOutstanding.delete(channel);
          this.metrics.probeFailures.inc();
          if (this.probePassed.delete(channel)) this.log.warn({ channel, waitedMs: Date.now() - o.sentAt }, 'bus delivery probe did not come back; not ready');
        }
        this.updateReady();
      });
    }
    if (!this.subReady || this.pub.status !== 'ready') return;
    for (const channel of this.probeChannels) {
      if (this.probeOutstanding.has(channel) || !this.confirmed.has(channel)) continue;
      const seq = ++this.probeSeq;
      const sent = { seq, sentAt: Date.now() };
      this.probeOutstanding.set(channel, sent);
      const send = this.options.cluster ? this.pub.spublish(channel, String(seq)) : this.pub.publish(channel, String(seq));
      send.catch(() => {
        if (this.probeOutstanding.get(channel) === sent) this.probeOutstanding.delete(channel);
      });
    }
  }

  private onProbe(channel: string, message: Buffer): void {
    const outstanding = this.probeOutstanding.get(channel);
    if (!outstanding || outstanding.seq !== Number(message.toString())) return;
    this.probeOutstanding.delete(channel);
    this.metrics.probeLatency.observe((Date.now() - outstanding.sentAt) / 1000);
    const wasReady = this.ready();
    this.probePassed.add(channel);
    if (!wasReady && this.ready()) this.log.info({}, 'bus delivery probe passes; ready');
    this.updateReady();
  }

  /** On a cluster, keeps one probe channel on every primary, following topology changes. */
  private followShards(): void {
    const slots = (this.pub as Cluster).slots;
    const firstSlotOf = new Map<string, number>();
    for (let slot = 0; slot < slots.length; slot++) {
      const primary = slots[slot]?.[0];
      if (primary !== undefined && !firstSlotOf.has(primary)) firstSlotOf.set(primary, slot);
    }
    if (firstSlotOf.size === 0) return;
    const wanted = [...firstSlotOf.values()].map((slot) => `${this.probeChannel}:{${tagForSlot(slot)}}`);
    if (wanted.length === this.probeChannels.length && wanted.every((c, i) => c === this.probeChannels[i])) return;
    for (const channel of this.probeChannels) {
      if (wanted.includes(channel)) continue;
      this.desired.delete(channel);
      this.probeOutstanding.delete(channel);
      this.probePassed.delete(channel);
    }
    for (const channel of wanted) this.desired.set(channel, PROBE);
    this.probeChannels = wanted;
    this.scheduleFlush();
    this.updateReady();
  }

  private updateReady(): void {
    this.metrics.ready.set(this.ready() ? 1 : 0);
  }
}

/** The stream and meta keys of a channel's history; the {channel} hash tag keeps them in its slot. */
export function streamKeys(channel: string): [stream: string, meta: string] {
  return [`{${channel}}:stream`, `{${channel}}:meta`];
}

const slotTags = new Map<number, string>();

/** A short hash tag that lands in `slot` (found by search once, then cached). */
function tagForSlot(slot: number): string {
  let tag = slotTags.get(slot);
  for (let i = 0; tag === undefined; i++) if (hashSlot(String(i)) === slot) tag = String(i);
  slotTags.set(slot, tag);
  return tag;
}

function nodeKey(client: Redis): string {
  return `${client.options.host}:${client.options.port}`;
}

/** The connections of a cluster client's sharded subscribers (ioredis keeps them internal). */
function shardedSubscriberLinks(cluster: Cluster): Redis[] {
  const group = (cluster as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, { getInstance(): Redis | null }> } }).shardedSubscribers;
  const links: Redis[] = [];
  for (const s of group?.shardedSubscribers?.values() ?? []) {
    const instance = s.getInstance();
    if (instance) links.push(instance);
  }
  return links;
}
