// How a subscription joins a topic's live flow: what to replay and what the Ack says. Pure.
import type { AckBody, EventBody, StreamPosition } from '../protocol/frames.js';
import type { HistoryState } from './bus.js';

/** What a joining session gets before its Ack, and the Ack itself. */
export interface JoinPlan {
  /** Events to send before the Ack, in order. */
  readonly replay: EventBody[];
  readonly ack: AckBody;
}

/**
 * Plans a join. `state` was read after the channel subscription was confirmed; `captured` holds the
 * live events that arrived since that confirmation, in arrival order (they overlap the read's end).
 * Without recover nothing is replayed and the Ack names the newest position seen, so every event
 * after it reaches the session live. With recover the held events after `since` are replayed, then
 * the captured ones not already covered (deduplicated by offset); `recovered` is true only when the
 * epochs match and the offsets run on from `since` without a hole. `keepsHistory` says whether the
 * topic is configured to keep history, which decides whether an empty stream proves nothing was lost.
 */
export function planJoin(
  state: HistoryState,
  captured: readonly EventBody[],
  recover: boolean,
  since: StreamPosition | undefined,
  keepsHistory: boolean,
): JoinPlan {
  let epoch = state.epoch;
  let top = state.top;
  // A stream born while the read was in flight shows up only in the captured events.
  const firstCaptured = captured.find((e) => e.position)?.position;
  if (epoch === '' && firstCaptured) epoch = firstCaptured.epoch;

  if (!recover) {
    for (const e of captured) if (e.position && e.position.epoch === epoch && e.position.offset > top) top = e.position.offset;
    return { replay: [], ack: epoch === '' ? {} : { position: { offset: top, epoch } } };
  }

  const sinceOffset = since?.offset ?? 0;
  const sinceEpoch = since?.epoch ?? '';
  const fromStart = sinceEpoch === '' && sinceOffset === 0;
  const sameEpoch = fromStart || sinceEpoch === epoch;

  if (!sameEpoch || sinceOffset > top && state.epoch !== '') {
    // Offsets of another epoch mean nothing here: the client must reload its state.
    for (const e of captured) if (e.position && e.position.epoch === epoch && e.position.offset > top) top = e.position.offset;
    return { replay: [], ack: { position: epoch === '' ? undefined : { offset: top, epoch }, replayed: 0, recovered: false } };
  }

  const replay: EventBody[] = [];
  let last = sinceOffset;
  let contiguous = true;
  const take = (e: EventBody): void => {
    const p = e.position;
    if (p) {
      if (p.epoch !== epoch) { contiguous = false; return; }
      if (p.offset <= last) return; // already replayed or already seen by the client
      if (p.offset !== last + 1) contiguous = false;
      last = p.offset;
    }
    replay.push(e);
  };
  for (const e of state.events) take(e);
  for (const e of captured) take(e);
  if (last > top) top = last;
  if (last < top) contiguous = false; // held events ended before the top: trimmed or lost
  const provable = state.epoch !== '' || firstCaptured !== undefined || keepsHistory;
  const recovered = contiguous && provable;
  return {
    replay,
    ack: { position: epoch === '' ? undefined : { offset: top, epoch }, replayed: replay.length, recovered },
  };
}
