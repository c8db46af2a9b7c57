// `relaygate sub <topic>... [--recover] [--since offset:epoch] [--json] [--no-reconnect]`: prints
// each event as one JSON line on stdout until Ctrl-C. When the gateway closes with a code that
// invites it (drain, slow consumer, bus gap, network loss), it reconnects with jittered backoff and
// resubscribes with recover from the last position it printed, so no event is printed twice.
import { setTimeout as sleep } from 'node:timers/promises';
import { topicProblem } from '../auth/names.js';
import { RelaygateClient, RelaygateError, type CloseInfo } from '../client/client.js';
import { Code } from '../errors.js';
import type { Event, StreamPosition } from '../client/wire.js';
import { ConfigError, type ParsedArgs, type SettingValues } from '../config.js';
import { Exit, checkFlags, connectOptions, connectTo, interrupted, printError, textFlag, utf8 } from './client-command.js';

const flags = ['recover', 'since', 'json', 'insecure', 'no-reconnect'];

/** Connection failures worth another attempt. */
const retryable: ReadonlySet<number> = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED]);

/** First reconnect delay ceiling, and the ceiling it doubles up to. */
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/** One event as the JSON line `sub` prints: the payload as text when it is UTF-8, else base64. */
export function eventLine(e: Event): string {
  const text = utf8(e.payload);
  return JSON.stringify({
    topic: e.topic,
    ...(text !== undefined ? { payload: text } : { payloadBase64: Buffer.from(e.payload).toString('base64') }),
    ...(e.contentType ? { contentType: e.contentType } : {}),
    ...(e.position ? { position: { offset: String(e.position.offset), epoch: e.position.epoch } } : {}),
    publishedMs: e.publishedMs,
  });
}

function parseSince(text: string | undefined): StreamPosition | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+):(.*)$/.exec(text);
  if (!match || !Number.isSafeInteger(Number(match[1]))) throw new ConfigError('--since', 'must be offset:epoch, as printed in an event\'s position');
  return { offset: Number(match[1]), epoch: match[2]! };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Where each topic stands: the last position printed (or the stream top at subscribe). */
type Cursors = Map<string, StreamPosition | undefined>;

/**
 * Subscribes every topic on `client`. The first time it honours --recover/--since; after a
 * reconnect it recovers from each topic's cursor (topics without history simply resubscribe).
 */
async function subscribeAll(client: RelaygateClient, cursors: Cursors, first: boolean, recoverFirst: boolean): Promise<void> {
  for (const [topic, cursor] of cursors) {
    const recover = first ? recoverFirst : cursor !== undefined;
    const onEvent = (e: Event): void => {
      process.stdout.write(`${eventLine(e)}\n`);
      if (e.position) cursors.set(topic, e.position);
    };
    const ack = await client.subscribe(topic, onEvent, { recover, ...(recover && cursor ? { since: cursor } : {}) });
    if (cursors.get(topic) === undefined && ack.position) cursors.set(topic, ack.position);
    const at = ack.position ? ` at ${ack.position.offset}:${ack.position.epoch}` : '';
    const replay = recover ? `, replayed ${ack.replayed}, ${ack.recovered ? 'nothing missed' : 'events may have been missed'}` : '';
    log(`${first ? 'subscribed' : 'resubscribed'} to ${topic}${at}${replay}`);
  }
}

function closeLine(info: CloseInfo): string {
  return `relaygate sub: connection closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`;
}

/** Runs `relaygate sub`; returns 0 after Ctrl-C, 1 when subscribing fails or the connection ends for good. */
export async function runSub(values: SettingValues, args: ParsedArgs): Promise<number> {
  checkFlags('sub', args, flags);
  const topics = args.positional;
  if (topics.length === 0) throw new ConfigError('<topic>', 'missing; usage: relaygate sub <topic> [--recover]');
  for (const topic of topics) {
    const problem = topicProblem(topic);
    if (problem) throw new ConfigError('<topic>', `${JSON.stringify(topic)}: ${problem}`);
  }
  const since = parseSince(textFlag(args, 'since'));
  const recoverFirst = args.flags.get('recover') === true || since !== undefined;
  const reconnect = args.flags.get('no-reconnect') !== true;
  const { url, options } = await connectOptions(values, args);
  const cursors: Cursors = new Map(topics.map((t) => [t, since]));

  let client = await connectTo('sub', url, options);
  if (!client) return Exit.FAILED;
  const signals = interrupted();
  const stopped = signals.promise.then(() => 'stopped' as const);
  const stopTimers = new AbortController();
  void stopped.then(() => stopTimers.abort());
  let attempt = 0;
  let hintMs: number | undefined;
  try {
    for (let round = 0; ; round++) {
      if (client) {
        client.on('goAway', (g) => {
          hintMs = g.reconnectWithinMs;
          log(`relaygate sub: gateway going away (${g.reason}); reconnect within ${g.reconnectWithinMs} ms`);
        });
        try {
          await subscribeAll(client, cursors, round === 0, recoverFirst);
          attempt = 0;
        } catch (err) {
          // Refused (not granted, bad name): final. The connection dropping meanwhile: reconnect.
          if (!(err instanceof RelaygateError) || err.closeCode === undefined || !reconnect) {
            printError('sub', err);
            return Exit.FAILED;
          }
        }
        const ended = await Promise.race([stopped, client.closedInfo]);
        if (ended === 'stopped') return Exit.OK;
        if (!reconnect || !ended.reconnect || ended.needsFreshToken) {
          const advice = ended.needsFreshToken ? '; reconnect with a fresh token' : ended.reconnect ? '; reconnect and resubscribe with --recover' : '';
          log(`${closeLine(ended)}${advice}`);
          return ended.code === 1000 ? Exit.OK : Exit.FAILED;
        }
        log(`${closeLine(ended)}; reconnecting`);
      }
      // Jittered backoff: within the GoAway's window when one came, else doubling from 250 ms.
      const ceiling = hintMs ?? Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
      hintMs = undefined;
      attempt++;
      await sleep(Math.random() * ceiling, undefined, { signal: stopTimers.signal }).catch(() => undefined);
      if (stopTimers.signal.aborted) return Exit.OK;
      try {
        client = await RelaygateClient.connect(url, options);
      } catch (err) {
        printError('sub', err);
        // A gateway that is away may come back; a refused credential will not.
        if (!(err instanceof RelaygateError) || !retryable.has(err.code)) return Exit.FAILED;
        client = undefined;
      }
    }
  } finally {
    signals.dispose();
    await client?.close();
  }
}
