// Application-level heartbeat over Redis links: finds a half-open link within seconds (the kernel
// takes minutes) without mistaking a busy link, or a stalled process, for a dead one.
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

export interface LinkWatchOptions {
  /** Heartbeat interval: how often `beat` is called. */
  readonly intervalMs: number;
  /** Quiet intervals (a PING outstanding and no byte received) after which a link is dead. */
  readonly misses: number;
  readonly log: Logger;
  /** The links to watch now, by a stable key (they change with reconnects and cluster topology). */
  readonly links: () => Array<[key: string, client: Redis]>;
  /** Called when `healthy` may have changed. */
  readonly onChange: () => void;
}

/**
 * PINGs every link on each beat. A link with a PING outstanding that received no byte for `misses`
 * intervals is destroyed (so its client redials) and counts as silent until it answers again. Any
 * bytes count as life: a PONG may queue behind many replies on a busy link.
 */
export class LinkWatch {
  /** Link -> when its outstanding PING was sent. */
  private readonly pingSince = new Map<string, number>();
  /** Links found silent that have not answered since. */
  private readonly silent = new Set<string>();
  /** Link -> when it last received any bytes. */
  private readonly heardAt = new Map<string, number>();
  private readonly heardStreams = new WeakSet<object>();
  private lastBeat = Date.now();

  constructor(private readonly options: LinkWatchOptions) {}

  /** No watched link is silent. */
  get healthy(): boolean {
    return this.silent.size === 0;
  }

  /** Forgets the outstanding PING of a link that closed (its reconnect starts afresh). */
  forget(key: string): void {
    this.pingSince.delete(key);
  }

  /** One heartbeat: judges outstanding PINGs and sends new ones. */
  beat(): void {
    const now = Date.now();
    // After a stall of this process (GC, a long task) the links are not to blame: judge next time.
    const stalled = now - this.lastBeat > this.options.intervalMs * 2;
    this.lastBeat = now;
    const links = this.options.links();
    const current = new Set(links.map(([key]) => key));
    // Links that left (a node removed after a failover) no longer count.
    for (const key of this.silent) if (!current.has(key)) this.silent.delete(key);
    for (const key of this.pingSince.keys()) if (!current.has(key)) this.pingSince.delete(key);
    for (const [key, client] of links) this.ping(key, client, stalled);
    this.options.onChange();
  }

  private ping(key: string, client: Redis, stalled: boolean): void {
    if (client.status !== 'ready') {
      this.pingSince.delete(key);
      return;
    }
    const stream = client.stream;
    if (stream && !this.heardStreams.has(stream)) {
      this.heardStreams.add(stream);
      stream.on('data', () => this.heardAt.set(key, Date.now()));
    }
    const limit = this.options.intervalMs * this.options.misses;
    const since = this.pingSince.get(key);
    if (since !== undefined) {
      if (!stalled && this.quietFor(key, since) > limit) {
        // Bytes that arrived while this process was busy are read in this turn's poll phase: look again after it.
        setImmediate(() => {
          const quiet = this.quietFor(key, since);
          if (this.pingSince.get(key) !== since || quiet <= limit) return;
          this.options.log.warn({ link: key, silentMs: quiet }, 'bus link silent; dropping it and reconnecting');
          this.pingSince.delete(key);
          this.silent.add(key);
          this.options.onChange();
          // end() would wait for a FIN that a half-open peer never sends.
          stream?.destroy();
        });
      }
      return;
    }
    const sentAt = Date.now();
    this.pingSince.set(key, sentAt);
    client.ping().then(
      () => {
        if (this.pingSince.get(key) === sentAt) this.pingSince.delete(key);
        if (this.silent.delete(key)) this.options.onChange();
      },
      () => undefined,
    );
  }

  /** How long `key` has gone without receiving a byte since its PING was sent at `since`. */
  private quietFor(key: string, since: number): number {
    return Date.now() - Math.max(since, this.heardAt.get(key) ?? 0);
  }
}
