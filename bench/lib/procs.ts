// Every process a bench run starts (redis-server, gateways, nodes, peers, load workers) is a
// child registered here, and every one is stopped when the run ends, fails or is interrupted.
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** The project root (dist-bench/bench/lib → ../../..). */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The compiled bench directory (dist-bench/bench). */
export const benchDist = join(dirname(fileURLToPath(import.meta.url)), '..');

const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops every child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopAll(graceMs = 3000): Promise<void> {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(live.map((c) => stopChild(c, graceMs)));
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Makes a run that dies (exception, Ctrl-C, SIGTERM) still leave no process behind. */
export function stopAllOnExit(): void {
  process.once('exit', () => { for (const c of children) c.kill('SIGKILL'); });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { void stopAll(1000).finally(() => process.exit(130)); });
  }
}

/** A free TCP port on loopback, found now (port 0 is preferred where a process can report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A server process that announced itself with a JSON log line {"msg":"listening","port":N}. */
export class Server {
  constructor(readonly name: string, readonly child: ChildProcess, readonly port: number, readonly info: Record<string, unknown>) {}

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** SIGTERM (then SIGKILL) and wait for the exit. */
  stop(graceMs = 3000): Promise<void> {
    return stopChild(this.child, graceMs);
  }
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Node flags such as --cpu-prof. */
  nodeArgs?: string[];
  timeoutMs?: number;
}

/** Starts `node <script> ...args` and resolves once it logs "listening". */
export function startNodeServer(name: string, script: string, args: string[], opts: StartOptions = {}): Promise<Server> {
  const child = track(spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
    cwd: projectRoot,
    env: { ...cleanEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  return awaitListening(name, child, opts.timeoutMs ?? 30_000, (line) => {
    if (!line.startsWith('{')) return undefined;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      return entry.msg === 'listening' && typeof entry.port === 'number' ? entry : undefined;
    } catch { return undefined; }
  });
}

/** The parent's environment without RELAYGATE_* settings, so only what a bench passes applies. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('RELAYGATE_')) env[k] = v;
  return env;
}

function awaitListening(name: string, child: ChildProcess, timeoutMs: number, match: (line: string) => Record<string, unknown> | undefined): Promise<Server> {
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    const remember = (line: string): void => { tail.push(line); if (tail.length > 20) tail.shift(); };
    let done = false;
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} ${why}\n${tail.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`did not report listening within ${timeoutMs} ms`), timeoutMs);
    createInterface({ input: child.stderr! }).on('line', remember);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (done) return;
      remember(line);
      const entry = match(line);
      if (!entry) return;
      done = true;
      clearTimeout(timer);
      resolve(new Server(name, child, Number(entry.port), entry));
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
  });
}

/** A private redis-server on a free port, without persistence. */
export async function startRedis(): Promise<Server> {
  const port = await freePort();
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  return awaitListening('redis', child, 15_000, (line) => (/Ready to accept connections/.test(line) ? { port } : undefined));
}

/** A forked load-generator worker (dist-bench/bench/load/worker.js), driven over IPC. */
export class LoadWorker {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners: Array<(event: Record<string, unknown>) => void> = [];

  private constructor(readonly label: string, readonly child: ChildProcess) {
    child.on('message', (m: { seq?: number; ok?: boolean; result?: unknown; error?: string; event?: Record<string, unknown> }) => {
      if (m.event) { for (const l of this.listeners) l(m.event); return; }
      const w = this.waiting.get(m.seq ?? -1);
      if (!w) return;
      this.waiting.delete(m.seq!);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${label}: ${m.error}`));
    });
    // A send racing the worker's exit fails asynchronously (EPIPE): that is the end of the worker, not of the run.
    child.on('error', () => {});
    child.once('exit', (code, signal) => {
      for (const w of this.waiting.values()) w.reject(new Error(`${label} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  /** Forks a worker and sets up `role` with `config` (connections are open when this resolves). */
  static async start(label: string, role: string, config: Record<string, unknown>): Promise<{ worker: LoadWorker; info: Record<string, number> }> {
    const child = track(fork(join(benchDist, 'load', 'worker.js'), [], { cwd: projectRoot, env: cleanEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const worker = new LoadWorker(label, child);
    const info = await worker.call('setup', { role, config }) as Record<string, number>;
    return { worker, info };
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  call(cmd: string, extra: Record<string, unknown> = {}): Promise<unknown> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.child.send({ seq, cmd, ...extra }, (err) => {
        if (err && this.waiting.delete(seq)) reject(new Error(`${this.label}: ${err.message}`));
      });
    });
  }

  /** Relays a message to the role without waiting (publisher pacing). */
  notify(message: Record<string, number>): void {
    if (this.child.connected) this.child.send({ notify: message }, () => {});
  }

  onEvent(listener: (event: Record<string, unknown>) => void): void {
    this.listeners.push(listener);
  }

  /** Stops the role, then ends the process. */
  async stop(): Promise<void> {
    try { await withTimeout(this.call('stop'), 10_000); } catch { /* the process is ended below either way */ }
    await stopChild(this.child, 2000);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e as Error); });
  });
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (ms, user + system) and resident memory (bytes) of a process, from /proc. */
export function procSample(pid: number): { cpuMs: number; rssBytes: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpuMs, rssBytes: rss ? Number(rss[1]) * 1024 : 0 };
  } catch {
    return { cpuMs: 0, rssBytes: 0 };
  }
}

/** Busy and total CPU time of the whole machine (ms, all cores), from /proc/stat. */
export function machineSample(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = line.reduce((a, b) => a + b, 0);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
}
