// `relaygate call <function> --data <text|@file> [--json] [--timeout 5s] [--meta k=v,...]`:
// invokes one function; progress lines go to stderr, the result payload to stdout.
import { functionNameProblem } from '../auth/names.js';
import { ConfigError, parseDuration, type ParsedArgs, type SettingValues } from '../config.js';
import { Code } from '../errors.js';
import { RelaygateError } from '../client/client.js';
import { Exit, checkFlags, connect, interrupted, printError, readData, textFlag, utf8 } from './client-command.js';

const flags = ['data', 'json', 'insecure', 'timeout', 'meta', 'content-type', 'job-topic'];

/** Extra wait beyond the gateway's deadline before the command gives up on its own. */
const ANSWER_GRACE_MS = 5_000;

/** Parses `--meta a=1,b=2` into metadata entries. */
export function parseMeta(text: string | undefined): Record<string, string> {
  const meta: Record<string, string> = {};
  if (text === undefined) return meta;
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError('--meta', `expected key=value, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq).trim().toLowerCase();
    if (!/^[a-z0-9-]+$/.test(key)) throw new ConfigError('--meta', `key ${JSON.stringify(key)} must be letters, digits and '-' (it becomes an HTTP header)`);
    meta[key] = pair.slice(eq + 1);
  }
  return meta;
}

/** Runs `relaygate call`; returns the exit code (0 result, 1 error, 2 usage, 130 interrupted). */
export async function runCall(values: SettingValues, args: ParsedArgs): Promise<number> {
  checkFlags('call', args, flags);
  const [fn, ...extra] = args.positional;
  if (fn === undefined) throw new ConfigError('<function>', 'missing; usage: relaygate call <function> --data <text|@file>');
  if (extra.length > 0) throw new ConfigError('<function>', `one function per call (also got ${JSON.stringify(extra[0])})`);
  const problem = functionNameProblem(fn);
  if (problem) throw new ConfigError('<function>', problem);
  const timeoutText = textFlag(args, 'timeout');
  const timeoutMs = timeoutText === undefined ? 0 : parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs > 0xffffffff) throw new ConfigError('--timeout', 'must be a duration such as 500ms, 5s or 2m');
  const metadata = parseMeta(textFlag(args, 'meta'));
  const payload = await readData(args);
  const contentType = textFlag(args, 'content-type');
  const jobTopic = textFlag(args, 'job-topic');

  const client = await connect('call', values, args);
  if (!client) return Exit.FAILED;
  const abort = new AbortController();
  const signals = interrupted();
  void signals.promise.then(() => abort.abort());
  // The gateway answers every Invoke; this only guards against a gateway that stops answering.
  const guardMs = (timeoutMs || 15 * 60_000) + ANSWER_GRACE_MS;
  let guard: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new RelaygateError(Code.DEADLINE_EXCEEDED, `no answer within ${guardMs} ms`)), guardMs);
  });
  try {
    const result = await Promise.race([
      client.invoke(fn, payload, {
        timeoutMs,
        metadata,
        signal: abort.signal,
        ...(contentType !== undefined ? { contentType } : {}),
        ...(jobTopic !== undefined ? { jobTopic } : {}),
        onProgress: (p) => {
          const text = p.payload.length > 0 ? ` ${utf8(p.payload) ?? `(${p.payload.length} bytes)`}` : '';
          process.stderr.write(`progress ${(p.fraction * 100).toFixed(0)}%${text}\n`);
        },
      }),
      stuck,
    ]);
    await new Promise<void>((resolve, reject) => process.stdout.write(result.payload, (err) => (err ? reject(err) : resolve())));
    if (process.stdout.isTTY && result.payload.at(-1) !== 0x0a) process.stdout.write('\n');
    return Exit.OK;
  } catch (err) {
    printError('call', err);
    return abort.signal.aborted ? Exit.INTERRUPTED : Exit.FAILED;
  } finally {
    clearTimeout(guard);
    signals.dispose();
    await client.close();
  }
}
