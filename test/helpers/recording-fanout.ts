// A Fanout and Sessions that record what the hub hands them, for unit tests of the hub in-process.
// (End-to-end tests use the real uWS transport.)
import type { Principal } from '../../src/auth/principal.js';
import type { Close } from '../../src/errors.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import type { Fanout, Session } from '../../src/router/session.js';

export class RecordingFanout implements Fanout {
  readonly groups = new Map<string, Set<RecordingSession>>();
  readonly published: Array<{ key: string; frame: ServerFrame }> = [];

  publish(key: string, frame: ServerFrame): void {
    this.published.push({ key, frame });
    for (const s of this.groups.get(key) ?? []) s.frames.push(frame);
  }

  subscriberCount(key: string): number {
    return this.groups.get(key)?.size ?? 0;
  }
}

let next = 0;

export class RecordingSession implements Session {
  readonly id = `s${++next}`;
  readonly subprotocol = 'proto' as const;
  principal: Principal = { subject: 'u', tenant: 't', grants: { allows: () => true }, expiresAtMs: Date.now() + 3_600_000 };
  isOpen = true;
  readonly frames: ServerFrame[] = [];
  closedWith: Close | undefined;

  constructor(private readonly fanout: RecordingFanout) {}

  send(frame: ServerFrame): boolean {
    if (!this.isOpen) return false;
    this.frames.push(frame);
    return true;
  }

  joinTopic(key: string): void {
    let group = this.fanout.groups.get(key);
    if (!group) this.fanout.groups.set(key, (group = new Set()));
    group.add(this);
  }

  leaveTopic(key: string): void {
    this.fanout.groups.get(key)?.delete(this);
  }

  close(code: Close): void {
    this.isOpen = false;
    this.closedWith = code;
    for (const group of this.fanout.groups.values()) group.delete(this);
  }

  /** Payloads of the Event frames received, as text. */
  eventTexts(): string[] {
    return this.frames.flatMap((f) => ('event' in f ? [Buffer.from(f.event.payload).toString()] : []));
  }

  /** Frame kinds in arrival order, e.g. ['event', 'event', 'ack']. */
  kinds(): string[] {
    return this.frames.map((f) => Object.keys(f).find((k) => k !== 'id')!);
  }
}
