import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { thrownBy } from '../helpers/thrown.js';
import { ConfigError, loadSettings, parseBytes, parseDuration, settingsHelp, settingsMarkdown, settingsTable, type Command } from '../../src/config.js';

const commands: Command[] = ['gateway', 'node', 'dev', 'token', 'call', 'sub', 'pub'];

const configError = (fn: () => unknown): ConfigError => thrownBy(ConfigError, fn);

describe('parseDuration', () => {
  it.each<[string, number | undefined]>([
    ['250', 250], ['250ms', 250], ['10s', 10_000], ['1.5s', 1_500], ['5m', 300_000], ['1h', 3_600_000], ['2d', 172_800_000],
    [' 10s ', 10_000], ['0', 0], ['10 s', 10_000],
    ['', undefined], ['s', undefined], ['-1s', undefined], ['10x', undefined], ['1h30m', undefined], ['ten seconds', undefined], ['1e3', undefined],
  ])('%j → %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('parseBytes', () => {
  it.each<[string, number | undefined]>([
    ['1048576', 1_048_576], ['64kb', 65_536], ['64KiB', 65_536], ['4mb', 4_194_304], ['4 MB', 4_194_304], ['1gib', 1_073_741_824], ['512b', 512], ['0.5kb', 512],
    ['', undefined], ['4tb', undefined], ['-1', undefined], ['mb', undefined], ['4 m b', undefined],
  ])('%j → %s', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });

  it('reads back every whole number of kilobytes it is given', () => {
    fc.assert(fc.property(fc.nat({ max: 1_000_000 }), (n) => { expect(parseBytes(`${n}kb`)).toBe(n * 1024); }));
  });
});

describe('loadSettings', () => {
  it('fills in defaults, typed', () => {
    const { values, warnings } = loadSettings('gateway', {}, []);
    expect(values.maxFrameBytes).toBe(1_048_576);
    expect(values.maxBackpressure).toBe(4 * 1024 * 1024);
    expect(values.idleTimeout).toBe(60_000);
    expect(values.jwtClockTolerance).toBe(5_000);
    expect(values.permessageDeflate).toBe(false);
    expect(values.tenantClaim).toBe('tenant');
    expect(values.port).toBeUndefined();
    expect(values.jwtSecret).toBeUndefined();
    expect(warnings).toEqual([]);
    expect(Object.isFrozen(values)).toBe(true);
  });

  it('parses each type from the environment', () => {
    const { values } = loadSettings('gateway', {
      RELAYGATE_PORT: '9000', RELAYGATE_RATE_LIMIT: '12.5', RELAYGATE_PERMESSAGE_DEFLATE: 'yes', RELAYGATE_IDLE_TIMEOUT: '2m',
      RELAYGATE_MAX_FRAME_BYTES: '64kb', RELAYGATE_ORIGINS: 'https://a.example, https://b.example,', RELAYGATE_JWT_AUDIENCE: 'rg',
    }, []);
    expect(values).toMatchObject({
      port: 9000, rateLimit: 12.5, permessageDeflate: true, idleTimeout: 120_000, maxFrameBytes: 65_536,
      origins: ['https://a.example', 'https://b.example'], jwtAudience: 'rg',
    });
  });

  it('lets flags override the environment, in both flag spellings', () => {
    const env = { RELAYGATE_PORT: '9000', RELAYGATE_MAX_IN_FLIGHT: '10', RELAYGATE_REDIS_CLUSTER: 'true' };
    expect(loadSettings('gateway', env, ['--port', '9100']).values.port).toBe(9100);
    expect(loadSettings('gateway', env, ['--port=9200']).values.port).toBe(9200);
    expect(loadSettings('gateway', env, ['--max-in-flight', '3']).values.maxInFlight).toBe(3);
    expect(loadSettings('gateway', env, ['--redis-cluster=false']).values.redisCluster).toBe(false);
    expect(loadSettings('gateway', {}, ['--redis-cluster']).values.redisCluster).toBe(true);
    expect(loadSettings('gateway', env, []).values.port).toBe(9000);
  });

  it('a bad flag value names the setting even when the environment was fine', () => {
    const err = configError(() => loadSettings('gateway', { RELAYGATE_PORT: '9000' }, ['--port', 'abc']));
    expect(err.setting).toBe('RELAYGATE_PORT');
  });

  it('keeps positional arguments and non-setting flags apart', () => {
    const { args } = loadSettings('call', {}, ['sha256', '--data', 'hi', '--json', '--meta', 'a=b', '--url', 'ws://x/v1/ws'], ['json']);
    expect(args.positional).toEqual(['sha256']);
    expect(args.flags.get('data')).toBe('hi');
    expect(args.flags.get('json')).toBe(true);
    expect(args.flags.get('meta')).toBe('a=b');
    expect(args.flags.has('url')).toBe(false);
  });

  it('names the flag when a value is missing', () => {
    expect(configError(() => loadSettings('gateway', {}, ['--port'])).setting).toBe('--port');
    expect(configError(() => loadSettings('call', {}, ['--data', '--json'], ['json'])).setting).toBe('--data');
  });

  it('warns about unknown RELAYGATE_ variables and ignores others', () => {
    const { warnings } = loadSettings('gateway', { RELAYGATE_PROT: '80', RELAYGATE_PORT: '81', PATH: '/bin', relaygate_port: 'x' }, []);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('RELAYGATE_PROT');
  });

  it('binds dev to loopback unless told otherwise', () => {
    expect(loadSettings('dev', {}, []).values.host).toBe('127.0.0.1');
    expect(loadSettings('dev', { RELAYGATE_HOST: '0.0.0.0' }, []).values.host).toBe('0.0.0.0');
    expect(loadSettings('dev', {}, ['--host', '::1']).values.host).toBe('::1');
    expect(loadSettings('gateway', {}, []).values.host).toBe('0.0.0.0');
  });

  it.each<[string, Record<string, string>, string]>([
    ['a port that is not a number', { RELAYGATE_PORT: 'http' }, 'RELAYGATE_PORT'],
    ['a port out of range', { RELAYGATE_PORT: '70000' }, 'RELAYGATE_PORT'],
    ['a negative port', { RELAYGATE_PORT: '-1' }, 'RELAYGATE_PORT'],
    ['a fractional int', { RELAYGATE_MAX_IN_FLIGHT: '1.5' }, 'RELAYGATE_MAX_IN_FLIGHT'],
    ['an int below its minimum', { RELAYGATE_MAX_IN_FLIGHT: '0' }, 'RELAYGATE_MAX_IN_FLIGHT'],
    ['a float that is not a number', { RELAYGATE_RATE_LIMIT: 'fast' }, 'RELAYGATE_RATE_LIMIT'],
    ['an infinite float', { RELAYGATE_RATE_LIMIT: 'Infinity' }, 'RELAYGATE_RATE_LIMIT'],
    ['a float above its maximum', { RELAYGATE_RETRY_BUDGET: '1.5' }, 'RELAYGATE_RETRY_BUDGET'],
    ['a bool that is not one', { RELAYGATE_PERMESSAGE_DEFLATE: 'maybe' }, 'RELAYGATE_PERMESSAGE_DEFLATE'],
    ['a duration without a unit it knows', { RELAYGATE_IDLE_TIMEOUT: '10 minutes' }, 'RELAYGATE_IDLE_TIMEOUT'],
    ['a duration below its minimum', { RELAYGATE_IDLE_TIMEOUT: '1s' }, 'RELAYGATE_IDLE_TIMEOUT'],
    ['a duration above its maximum', { RELAYGATE_JWT_CLOCK_TOLERANCE: '1h' }, 'RELAYGATE_JWT_CLOCK_TOLERANCE'],
    ['a size with an unknown unit', { RELAYGATE_MAX_FRAME_BYTES: '4 tb' }, 'RELAYGATE_MAX_FRAME_BYTES'],
    ['a size below its minimum', { RELAYGATE_MAX_FRAME_BYTES: '8' }, 'RELAYGATE_MAX_FRAME_BYTES'],
    ['an empty string', { RELAYGATE_REDIS_URL: '' }, 'RELAYGATE_REDIS_URL'],
    ['an empty list', { RELAYGATE_ORIGINS: ' , ,' }, 'RELAYGATE_ORIGINS'],
  ])('refuses %s, naming the setting', (_name, env, setting) => {
    const err = configError(() => loadSettings('gateway', env, []));
    expect(err.setting).toBe(setting);
    expect(err.message.startsWith(`${setting}: `)).toBe(true);
    expect(err.message).not.toContain('\n');
  });

  it('never prints a secret value in an error', () => {
    const err = configError(() => loadSettings('gateway', { RELAYGATE_JWT_SECRET: '' }, []));
    expect(err.setting).toBe('RELAYGATE_JWT_SECRET');
    const pass = configError(() => loadSettings('gateway', { RELAYGATE_TLS_PASSPHRASE: '   ' }, []));
    expect(pass.message).toContain('a secret value');
  });
});

describe('help', () => {
  it.each(commands)('%s --help lists every setting the command reads, with its flag and default', (command) => {
    const help = settingsHelp(command);
    const rows = settingsTable.filter((s) => s.commands.includes(command));
    expect(rows.length).toBeGreaterThan(0);
    for (const s of rows) {
      expect(help).toContain(s.env);
      expect(help).toContain(`--${s.env.replace(/^RELAYGATE_/, '').toLowerCase().replaceAll('_', '-')}`);
      if (s.default !== undefined) expect(help).toContain(`(default ${s.default})`);
    }
    for (const s of settingsTable.filter((t) => !t.commands.includes(command))) expect(help).not.toContain(`  ${s.env} `);
  });

  it('every setting is read by some command and documented', () => {
    for (const s of settingsTable) {
      expect(s.commands.length, s.env).toBeGreaterThan(0);
      expect(s.doc.length, s.env).toBeGreaterThan(5);
      expect(s.env).toMatch(/^RELAYGATE_[A-Z0-9_]+$/);
    }
    expect(new Set(settingsTable.map((s) => s.env)).size).toBe(settingsTable.length);
  });

  it('every default parses', () => {
    const { values } = loadSettings('gateway', {}, []);
    for (const s of settingsTable) if (s.default !== undefined) expect(values[s.key], s.env).not.toBeUndefined();
  });

  it('the markdown table has one row per setting', () => {
    const md = settingsMarkdown();
    for (const s of settingsTable) expect(md).toContain(`\`${s.env}\``);
    expect(md.split('\n')).toHaveLength(settingsTable.length + 2);
  });

  it('the spec names every one of its settings', () => {
    const names = new Set(settingsTable.map((s) => s.env));
    for (const env of [
      'RELAYGATE_HOST', 'RELAYGATE_PORT', 'RELAYGATE_TLS_CERT', 'RELAYGATE_TLS_KEY', 'RELAYGATE_TLS_PASSPHRASE',
      'RELAYGATE_JWT_SECRET', 'RELAYGATE_JWT_PUBLIC_KEY', 'RELAYGATE_JWKS_URL', 'RELAYGATE_JWT_AUDIENCE', 'RELAYGATE_JWT_ISSUER',
      'RELAYGATE_ORIGINS', 'RELAYGATE_REDIS_URL', 'RELAYGATE_REDIS_CLUSTER', 'RELAYGATE_NODES', 'RELAYGATE_NODE_ID', 'RELAYGATE_NODE_URL',
      'RELAYGATE_MAX_FRAME_BYTES', 'RELAYGATE_MAX_IN_FLIGHT',
    ]) expect(names.has(env), env).toBe(true);
  });
});
