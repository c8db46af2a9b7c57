// What `relaygate call`, `sub` and `pub` share: flags, connecting, reading payloads, printing errors.
import { readFile } from 'node:fs/promises';
import { RelaygateClient, RelaygateError, type ConnectOptions } from '../client/client.js';
import { ConfigError, type ParsedArgs, type SettingValues } from '../config.js';
import { codeName } from '../errors.js';

/** Where call/sub/pub connect when RELAYGATE_URL is unset (what `relaygate dev` listens on). */
export const DEFAULT_URL = 'wss://127.0.0.1:8443/v1/ws';

/** Exit codes of the client commands. */
export const Exit = { OK: 0, FAILED: 1, USAGE: 2, INTERRUPTED: 130 } as const;

/** Throws ConfigError for any flag not in `known` (settings are parsed apart and never show up here). */
export function checkFlags(command: string, args: ParsedArgs, known: readonly string[]): void {
  for (const name of args.flags.keys()) {
    if (!known.includes(name)) throw new ConfigError(`--${name}`, `unknown flag for ${command}; see relaygate ${command} --help`);
  }
}

/** A flag's text value; `true` (given without a value) is a usage error. */
export function textFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  if (value === true) throw new ConfigError(`--${name}`, 'needs a value');
  return value;
}

/** The bytes of `--data`: the text itself, `@path` for a file's bytes, `@-` for standard input. */
export async function readData(args: ParsedArgs): Promise<Uint8Array> {
  const data = textFlag(args, 'data');
  if (data === undefined) return new Uint8Array(0);
  if (!data.startsWith('@')) return new TextEncoder().encode(data);
  const path = data.slice(1);
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new ConfigError('--data', `cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

/** Connection options from the settings (RELAYGATE_URL, RELAYGATE_TOKEN, RELAYGATE_CA) and flags (--json, --insecure). */
export async function connectOptions(values: SettingValues, args: ParsedArgs): Promise<{ url: string; options: ConnectOptions }> {
  if (values.token === undefined) throw new ConfigError('RELAYGATE_TOKEN', 'must be set (or pass --token); `relaygate token` prints one');
  const url = values.url ?? DEFAULT_URL;
  if (!/^wss?:\/\//i.test(url)) throw new ConfigError('RELAYGATE_URL', 'must be a ws:// or wss:// URL');
  const options: ConnectOptions = { token: values.token, subprotocol: args.flags.get('json') === true ? 'json' : 'proto' };
  if (values.ca !== undefined) {
    try {
      options.ca = await readFile(values.ca);
    } catch (err) {
      throw new ConfigError('RELAYGATE_CA', `cannot read ${JSON.stringify(values.ca)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  }
  if (args.flags.get('insecure') === true) options.rejectUnauthorized = false;
  return { url, options };
}

/** Connects, printing a one-line reason on failure (undefined then). */
export async function connect(command: string, values: SettingValues, args: ParsedArgs): Promise<RelaygateClient | undefined> {
  const { url, options } = await connectOptions(values, args);
  return connectTo(command, url, options);
}

/** Connects to `url`, printing a one-line reason (and a hint for certificate trouble) on failure. */
export async function connectTo(command: string, url: string, options: ConnectOptions): Promise<RelaygateClient | undefined> {
  try {
    return await RelaygateClient.connect(url, options);
  } catch (err) {
    printError(command, err);
    if (err instanceof RelaygateError && /self[- ]signed|unable to verify|certificate/i.test(err.message)) {
      process.stderr.write(`relaygate ${command}: hint: trust the gateway's certificate with RELAYGATE_CA=<pem file>, or pass --insecure for a local dev gateway\n`);
    }
    return undefined;
  }
}

/** Prints `relaygate <command>: CODE: message` for a failed request or connection. */
export function printError(command: string, err: unknown): void {
  if (err instanceof RelaygateError) {
    const retry = err.retryAfterMs > 0 ? ` (retry after ${err.retryAfterMs} ms)` : '';
    process.stderr.write(`relaygate ${command}: ${codeName(err.code)}: ${err.message}${retry}\n`);
  } else if (err instanceof ConfigError) {
    process.stderr.write(`relaygate ${command}: ${err.message}\n`);
  } else {
    process.stderr.write(`relaygate ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

/** Text when the bytes are valid UTF-8, else undefined. */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Resolves on the first SIGINT or SIGTERM; `dispose` removes the handlers. */
export function interrupted(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const promise = new Promise<NodeJS.Signals>((resolve) => { onSignal = resolve; });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
