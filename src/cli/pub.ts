// `relaygate pub <topic> --data <text|@file> [--content-type T] [--json]`: publishes one event and
// prints its Ack as JSON ({"offset":"…","epoch":"…"} when the topic keeps history, else {}).
import { topicProblem } from '../auth/names.js';
import { ConfigError, type ParsedArgs, type SettingValues } from '../config.js';
import { Exit, checkFlags, connect, printError, readData, textFlag } from './client-command.js';

const flags = ['data', 'content-type', 'json', 'insecure'];

/** Runs `relaygate pub`; returns 0 once the bus accepted the event, 1 on an error. */
export async function runPub(values: SettingValues, args: ParsedArgs): Promise<number> {
  checkFlags('pub', args, flags);
  const [topic, ...extra] = args.positional;
  if (topic === undefined) throw new ConfigError('<topic>', 'missing; usage: relaygate pub <topic> --data <text|@file>');
  if (extra.length > 0) throw new ConfigError('<topic>', `one topic per publish (also got ${JSON.stringify(extra[0])})`);
  const problem = topicProblem(topic);
  if (problem) throw new ConfigError('<topic>', problem);
  const payload = await readData(args);
  const contentType = textFlag(args, 'content-type') ?? '';

  const client = await connect('pub', values, args);
  if (!client) return Exit.FAILED;
  try {
    const ack = await client.publish(topic, payload, contentType);
    process.stdout.write(`${JSON.stringify(ack.position ? { offset: String(ack.position.offset), epoch: ack.position.epoch } : {})}\n`);
    return Exit.OK;
  } catch (err) {
    printError('pub', err);
    return Exit.FAILED;
  } finally {
    await client.close();
  }
}
