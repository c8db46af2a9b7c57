// `relaygate sub <topic>... [--recover] [--since offset:epoch] [--json]`: prints each event as one
// JSON line on stdout until Ctrl-C (or until the gateway closes the connection).
import { topicProblem } from '../auth/names.js';
import type { Event, StreamPosition } from '../client/wire.js';
import { ConfigError, type ParsedArgs, type SettingValues } from '../config.js';
import { Exit, checkFlags, connect, interrupted, printError, textFlag, utf8 } from './client-command.js';

const flags = ['recover', 'since', 'json', 'insecure'];

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

/** Runs `relaygate sub`; returns 0 after Ctrl-C, 1 when subscribing fails or the gateway ends the connection. */
export async function runSub(values: SettingValues, args: ParsedArgs): Promise<number> {
  checkFlags('sub', args, flags);
  const topics = args.positional;
  if (topics.length === 0) throw new ConfigError('<topic>', 'missing; usage: relaygate sub <topic> [--recover]');
  for (const topic of topics) {
    const problem = topicProblem(topic);
    if (problem) throw new ConfigError('<topic>', `${JSON.stringify(topic)}: ${problem}`);
  }
  const since = parseSince(textFlag(args, 'since'));
  const recover = args.flags.get('recover') === true || since !== undefined;

  const client = await connect('sub', values, args);
  if (!client) return Exit.FAILED;
  const signals = interrupted();
  try {
    client.on('goAway', (g) => process.stderr.write(`relaygate sub: gateway going away (${g.reason}); reconnect within ${g.reconnectWithinMs} ms\n`));
    for (const topic of topics) {
      const ack = await client.subscribe(topic, (e) => process.stdout.write(`${eventLine(e)}\n`), { recover, ...(since ? { since } : {}) });
      const at = ack.position ? ` at ${ack.position.offset}:${ack.position.epoch}` : '';
      const replay = recover ? `, replayed ${ack.replayed}, ${ack.recovered ? 'nothing missed' : 'events may have been missed'}` : '';
      process.stderr.write(`subscribed to ${topic}${at}${replay}\n`);
    }
    const ended = await Promise.race([signals.promise.then(() => undefined), client.closedInfo]);
    if (ended === undefined) return Exit.OK;
    const advice = ended.needsFreshToken ? '; reconnect with a fresh token' : ended.reconnect ? '; reconnect and resubscribe with --recover' : '';
    process.stderr.write(`relaygate sub: connection closed (${ended.code}${ended.reason ? ` ${ended.reason}` : ''})${advice}\n`);
    return ended.code === 1000 ? Exit.OK : Exit.FAILED;
  } catch (err) {
    printError('sub', err);
    return Exit.FAILED;
  } finally {
    signals.dispose();
    await client.close();
  }
}
