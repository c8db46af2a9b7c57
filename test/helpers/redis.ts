// Private redis-server processes for tests that kill, pause or cluster Redis: each on a free
// loopback port with its own directory, killed for real.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

const run = promisify(execFile);

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerOptions {
  /** Keep data across a restart (append-only file, fsync on every write). */
  persistent?: boolean;
  /** Start as a cluster node. */
  cluster?: boolean;
  port?: number;
}

/** One redis-server child process. */
export class RedisServer {
  private child: ChildProcess | undefined;
  private readonly dir: string;
  private busPort: number | undefined;

  private constructor(readonly port: number, private readonly options: RedisServerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'relaygate-redis-'));
  }

  /** Starts a redis-server on a free port and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(options.port ?? (await freePort()), options);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--protected-mode', 'no'];
    if (this.options.persistent) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    else args.push('--appendonly', 'no');
    if (this.options.cluster) {
      // The cluster bus gets its own free port (the default, port + 10000, may be taken or out of range).
      this.busPort ??= await freePort();
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '3000', '--cluster-port', String(this.busPort));
    }
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => { if (output.length < 20_000) output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { if (output.length < 20_000) output += d.toString(); });
    const deadline = Date.now() + 15_000;
    while (!(await this.answers())) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${output.slice(-2000)}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on ${this.port} did not start: ${output.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Whether the server answers PING now. */
  async answers(): Promise<boolean> {
    try {
      const { stdout } = await run('redis-cli', ['-p', String(this.port), 'PING'], { timeout: 2000 });
      return stdout.trim() === 'PONG';
    } catch {
      return false;
    }
  }

  /** Runs one command through redis-cli and returns its raw output. */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run('redis-cli', ['-p', String(this.port), ...args], { timeout: 10_000 });
    return stdout;
  }

  /** A plain client to this server (close it after use). */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  }

  /** SIGKILLs the process (no shutdown, no save) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts it again on the same port (with the same data directory). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Freezes the process (SIGSTOP): its sockets stay open but nothing answers, like a half-open link. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Redis Cluster of three primaries (no replicas) built from redis-server processes. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(): Promise<RedisCluster> {
    const started = await Promise.allSettled([0, 1, 2].map(() => RedisServer.start({ cluster: true })));
    const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const cluster = new RedisCluster(nodes);
    try {
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
      await cluster.waitHealthy();
    } catch (err) {
      // Leave no redis-server behind when the cluster cannot form.
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Comma-separated seed list, as RELAYGATE_REDIS_URL takes it with RELAYGATE_REDIS_CLUSTER=1. */
  get seeds(): string {
    return this.nodes.map((n) => `redis://127.0.0.1:${n.port}`).join(',');
  }

  /** Waits until every node reports cluster_state:ok and agrees on all 16384 slots. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const infos = await Promise.all(this.nodes.map((n) => n.cli('CLUSTER', 'INFO').catch(() => '')));
      if (infos.every((i) => i.includes('cluster_state:ok') && i.includes('cluster_slots_ok:16384'))) return;
      if (Date.now() > deadline) throw new Error(`cluster not healthy: ${infos.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async nodeId(node: RedisServer): Promise<string> {
    return (await node.cli('CLUSTER', 'MYID')).trim();
  }

  /** The node serving `slot`. */
  async ownerOf(slot: number): Promise<RedisServer> {
    const client = this.nodes[0]!.client();
    try {
      const slots = (await client.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
      for (const [from, to, master] of slots) {
        if (slot >= from && slot <= to) return this.nodes.find((n) => n.port === Number(master[1]))!;
      }
    } finally {
      client.disconnect();
    }
    throw new Error(`no owner for slot ${slot}`);
  }

  /** Moves one slot, with its keys, to `target` (the CLUSTER SETSLOT / MIGRATE procedure). */
  async migrateSlot(slot: number, target: RedisServer): Promise<void> {
    const source = await this.ownerOf(slot);
    if (source === target) return;
    const sourceId = await this.nodeId(source);
    const targetId = await this.nodeId(target);
    await target.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId);
    await source.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId);
    for (;;) {
      const keys = (await source.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')).split('\n').map((k) => k.trim()).filter(Boolean);
      if (keys.length === 0) break;
      await source.cli('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys);
    }
    for (const node of [target, source, ...this.nodes.filter((n) => n !== source && n !== target)]) {
      await node.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId);
    }
    await this.waitHealthy();
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/** Starts a three-primary cluster before the tests of the enclosing describe (or file) and stops it after. */
export function clusterFor(): { readonly cluster: RedisCluster } {
  const context = {} as { cluster: RedisCluster };
  beforeAll(async () => {
    context.cluster = await RedisCluster.start();
  }, 90_000);
  afterAll(async () => {
    await context.cluster?.stop();
  });
  return context;
}
