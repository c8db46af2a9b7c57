#!/usr/bin/env node
// The `relaygate` command: parses settings once, prints one line per bad setting, dispatches.
import { readFileSync } from 'node:fs';
import { ConfigError, loadSettings, settingsHelp, type Command, type LoadedSettings } from '../config.js';

interface CommandSpec {
  readonly summary: string;
  readonly usage: string;
  /** Command flags that are not settings and take no value. */
  readonly booleanFlags?: readonly string[];
  run(settings: LoadedSettings): Promise<number | undefined>;
}

const commands: Record<Command, CommandSpec> = {
  gateway: {
    summary: 'run one gateway process',
    usage: 'relaygate gateway [--port N] [--nodes URL,...] [--redis-url URL] ...',
    run: async (s) => (await import('./gateway.js')).runGatewayCommand(s),
  },
  node: {
    summary: 'run one reference compute node',
    usage: 'relaygate node [--port N] [--node-id ID] [--node-url URL] [--redis-url URL]',
    run: async (s) => (await import('./serve-node.js')).runNodeCommand(s),
  },
  dev: {
    summary: 'gateway + two local nodes + in-process bus, self-signed TLS; prints a dev token',
    usage: 'relaygate dev [--port N]',
    run: async (s) => (await import('./dev.js')).runDevCommand(s),
  },
  token: {
    summary: 'print a JWT signed with RELAYGATE_JWT_SECRET',
    usage: 'relaygate token --sub S --scope "invoke:* subscribe:resources/**" [--tenant T] [--ttl 1h]',
    run: async (s) => (await import('./token.js')).runTokenCommand(s),
  },
  call: {
    summary: 'invoke a function over WebSocket and print the result',
    usage: 'relaygate call <function> --data <text|@file|@-> [--content-type T] [--timeout 5s] [--meta k=v,...] [--job-topic T] [--json] [--insecure]',
    booleanFlags: ['json', 'insecure'],
    run: async (s) => (await import('./call.js')).runCall(s.values, s.args),
  },
  sub: {
    summary: 'subscribe to a topic and print each event as a JSON line',
    usage: 'relaygate sub <topic>... [--recover | --since offset:epoch] [--no-reconnect] [--json] [--insecure]',
    booleanFlags: ['recover', 'insecure', 'json', 'no-reconnect'],
    run: async (s) => (await import('./sub.js')).runSub(s.values, s.args),
  },
  pub: {
    summary: 'publish one event to a topic',
    usage: 'relaygate pub <topic> --data <text|@file|@-> [--content-type T] [--json] [--insecure]',
    booleanFlags: ['insecure', 'json'],
    run: async (s) => (await import('./pub.js')).runPub(s.values, s.args),
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length)) + 2;
  const lines = Object.entries(commands).map(([name, spec]) => `  ${name.padEnd(width)}${spec.summary}`);
  return [
    `relaygate ${version()}: real-time WebSocket gateway for remote compute and resource events`,
    '',
    'Usage: relaygate <command> [flags]',
    '',
    'Commands:',
    ...lines,
    '',
    'Every setting is an environment variable; a flag of the same name in kebab case overrides it',
    '(RELAYGATE_PORT=9000 or --port 9000). `relaygate <command> --help` lists the settings of a command.',
  ].join('\n');
}

function commandHelp(name: Command): string {
  const spec = commands[name];
  return [`relaygate ${name}: ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Settings:', settingsHelp(name)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (!Object.hasOwn(commands, name)) {
    process.stderr.write(`relaygate: unknown command "${name}"; see relaygate --help\n`);
    return 2;
  }
  const command = name as Command;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  let settings: LoadedSettings;
  try {
    settings = loadSettings(command, process.env, rest, commands[command].booleanFlags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`relaygate ${command}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  for (const warning of settings.warnings) process.stderr.write(`relaygate ${command}: warning: ${warning}\n`);
  return (await commands[command].run(settings)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    // Servers resolve undefined once listening and live on; other commands end with their code.
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
    process.stderr.write(`relaygate: ${message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
