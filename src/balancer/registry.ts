// Dynamic node membership through Redis: joins and leaves arrive on the registry channel at once;
// a node that stops heartbeating is dropped once its registration expires (checked locally at a
// quarter of the heartbeat period, asking Redis only about nodes that went quiet). A full read of
// the registry runs at start, after every reconnect and every ten periods, so a lost join cannot
// leave a gateway wrong for long; a lost leave is caught by the expiry check.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log.js';
import {
  openRegistryRedis,
  parseRegistration,
  parseRegistryMessage,
  registrationTtlMs,
  registryKeys,
  type NodeRegistration,
  type RegistryKeys,
} from '../nodes/registration.js';

export interface RegistryWatcherOptions {
  readonly redisUrl: string;
  readonly redisCluster: boolean;
  readonly redisPrefix: string;
  readonly heartbeatMs: number;
}

/** Told about membership changes; `join` also carries updates of a known node. */
export interface RegistryListener {
  join(node: NodeRegistration, initial: boolean): void;
  leave(id: string): void;
}

const FULL_READ_EVERY = 10;

/** Watches the Redis node registry. Guarantee: every registered, heartbeating node is reported, and every node gone reported as left within two heartbeat periods. */
export class RegistryWatcher {
  private readonly keys: RegistryKeys;
  private readonly commands: Redis | Cluster;
  private readonly subscriber: Redis | Cluster;
  private readonly lastSeen = new Map<string, number>();
  private readonly ttlMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeps = 0;
  private sweeping = false;
  private closed = false;

  constructor(private readonly options: RegistryWatcherOptions, private readonly listener: RegistryListener, private readonly log: Logger) {
    this.keys = registryKeys(options.redisPrefix);
    this.ttlMs = registrationTtlMs(options.heartbeatMs);
    this.commands = openRegistryRedis(options.redisUrl, options.redisCluster, 'relaygate-registry');
    // The subscription waits for Redis however long it takes; commands fail fast and are retried by sweeps.
    this.subscriber = openRegistryRedis(options.redisUrl, options.redisCluster, 'relaygate-registry-sub', null);
    for (const conn of [this.commands, this.subscriber]) conn.on('error', (err: Error) => this.log.warn({ err: err.message }, 'registry redis error'));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.keys.channel) this.onMessage(message);
    });
    // After a reconnect: the silence was the gateway's, not the nodes', so every node gets a fresh
    // registration lifetime (a restarted, empty Redis fills again with their next heartbeats), and
    // messages may have been missed, so everything is read again.
    for (const conn of [this.commands, this.subscriber]) {
      let connectedBefore = false;
      conn.on('ready', () => {
        if (connectedBefore) {
          // One more heartbeat period on top: nodes reconnect on their own schedule.
          const renewed = Date.now() + options.heartbeatMs;
          for (const id of this.lastSeen.keys()) this.lastSeen.set(id, renewed);
          if (conn === this.subscriber) void this.fullRead(false);
        }
        connectedBefore = true;
      });
    }
  }

  /** Subscribes and reads the current registry; resolves once the known nodes were reported. */
  async start(): Promise<void> {
    // Sweeps (and the periodic full read) run from now on, so a failed first read is retried.
    const period = Math.max(25, Math.floor(this.options.heartbeatMs / 4));
    this.sweepTimer = setInterval(() => void this.sweep(), period);
    this.sweepTimer.unref();
    await this.subscriber.subscribe(this.keys.channel);
    await this.fullRead(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.subscriber.disconnect();
    this.commands.disconnect();
  }

  private onMessage(text: string): void {
    const message = parseRegistryMessage(text);
    if (!message) {
      this.log.warn('malformed registry message ignored');
      return;
    }
    if (message.type === 'leave') {
      this.drop(message.node.id);
      return;
    }
    this.seen(message.node, false);
  }

  private seen(node: NodeRegistration, initial: boolean): void {
    this.lastSeen.set(node.id, Date.now());
    this.listener.join(node, initial);
  }

  private drop(id: string): void {
    if (!this.lastSeen.delete(id)) return;
    this.listener.leave(id);
  }

  /** Reads every registration; reports new and changed nodes, and drops those no longer there. */
  private async fullRead(initial: boolean): Promise<void> {
    try {
      const ids = await this.commands.smembers(this.keys.set);
      const values = ids.length === 0 ? [] : await this.commands.mget(...ids.map((id) => this.keys.node(id)));
      const expired: string[] = [];
      ids.forEach((id, i) => {
        const raw = values[i];
        const registration = raw ? safeParse(raw) : undefined;
        if (registration && registration.id === id) this.seen(registration, initial);
        else if (!raw) expired.push(id);
      });
      if (expired.length > 0) await this.commands.srem(this.keys.set, ...expired);
      // Nodes missing here are not dropped yet: after a Redis restart the registry is empty until
      // the next heartbeats. The sweep drops them once they have been quiet for a registration's life.
    } catch (err) {
      if (initial) throw err;
      if (!this.closed) this.log.warn({ err: (err as Error).message }, 'registry read failed');
    }
  }

  private async sweep(): Promise<void> {
    if (this.closed || this.sweeping) return;
    this.sweeping = true;
    try {
      await this.sweepOnce();
    } finally {
      this.sweeping = false;
    }
  }

  private async sweepOnce(): Promise<void> {
    if (++this.sweeps % (FULL_READ_EVERY * 4) === 0) {
      await this.fullRead(false);
      return;
    }
    const now = Date.now();
    for (const [id, at] of this.lastSeen) {
      if (now - at <= this.ttlMs) continue;
      // Quiet for longer than a registration lives: ask Redis how long it still has.
      try {
        const leftMs = await this.commands.pttl(this.keys.node(id));
        // Re-read: a message or a reconnect while waiting may have renewed the node.
        const seen = this.lastSeen.get(id);
        if (seen === undefined || Date.now() - seen <= this.ttlMs) continue;
        if (leftMs === -2) this.drop(id);
        // Still there (a heartbeat message was missed): look again when it would expire.
        else this.lastSeen.set(id, Date.now() - this.ttlMs + (leftMs < 0 ? this.ttlMs : leftMs));
      } catch (err) {
        if (!this.closed) this.log.warn({ err: (err as Error).message, node: id }, 'registry check failed');
      }
    }
  }
}

function safeParse(raw: string): NodeRegistration | undefined {
  try {
    return parseRegistration(JSON.parse(raw));
  } catch {
    return undefined;
  }
}
