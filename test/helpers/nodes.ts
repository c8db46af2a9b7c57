// Compute nodes as real child processes: the reference node (`relaygate node`), a node written
// with the SDK that records every execution, and one written with plain node:http (no SDK).
// Each prints a JSON "listening" line with its port; tests wait for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv, cliPath } from './cli.js';

const countingNodeScript = fileURLToPath(new URL('./counting-node.mjs', import.meta.url));
const plainNodeScript = fileURLToPath(new URL('./plain-node.mjs', import.meta.url));

export interface LogEntry {
  msg?: string;
  [field: string]: unknown;
}

/** One node process. */
export interface NodeProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** JSON log lines so far. */
  readonly logs: LogEntry[];
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  /** Resolves with the first log line matching `test` (waits up to `timeoutMs`). */
  waitForLog(test: (entry: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  /** SIGKILL, at once. */
  kill(): Promise<void>;
  /** SIGTERM (drain) and wait for exit. */
  stop(): Promise<number | string>;
}

/** A node process to spawn: `node <args>` with `env` over a clean environment. */
export interface SpawnSpec {
  args: string[];
  env: Record<string, string | undefined>;
}

/** Spawns a node process and waits for its JSON "listening" line with a port. */
export async function spawnNodeProcess(spec: SpawnSpec, timeoutMs = 20_000): Promise<NodeProcess> {
  const child = spawn(process.execPath, spec.args, { env: cleanEnv(spec.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogEntry[] = [];
  const waiters: { test: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  let stderr = '';
  let buffered = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let entry: LogEntry;
      try {
        entry = JSON.parse(line) as LogEntry;
      } catch {
        continue; // not a log line (e.g. a banner)
      }
      logs.push(entry);
      for (const waiter of [...waiters]) {
        if (waiter.test(entry)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const waitForLog = (test: (e: LogEntry) => boolean, wait = 20_000): Promise<LogEntry> => {
    const found = logs.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node log line not seen within ${wait} ms; stderr: ${stderr}\nlogs: ${JSON.stringify(logs.slice(-10))}`)), wait);
      waiters.push({ test, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  };
  let listening: LogEntry;
  try {
    listening = await Promise.race([
      waitForLog((e) => e.msg === 'listening' && typeof e.port === 'number', timeoutMs),
      exited.then((code) => { throw new Error(`node exited (${code}) before listening; stderr: ${stderr}`); }),
    ]);
  } catch (err) {
    // A node that never announced itself must not outlive the test run.
    child.kill('SIGKILL');
    throw err;
  }
  const port = listening.port as number;
  let gone = false;
  void exited.then(() => { gone = true; });
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    logs,
    exited,
    waitForLog,
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!gone) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** The reference node, `relaygate node --host 127.0.0.1 --port <port|0>`, with extra settings in `env`. */
export function spawnReferenceNode(env: Record<string, string> = {}, port = 0): Promise<NodeProcess> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build first`);
  return spawnNodeProcess({
    args: [cliPath, 'node', '--host', '127.0.0.1', '--port', String(port)],
    env: { RELAYGATE_LOG_LEVEL: 'info', ...env },
  });
}

export interface CountingNodeOptions {
  /** File each execution appends its request id to (synchronously, so a SIGKILL loses nothing). */
  countFile: string;
  port?: number;
  /** Milliseconds every `work` call takes. */
  delayMs?: number;
  id?: string;
  env?: Record<string, string>;
}

/** A node built with the SDK (createNode) serving `work`, which records each execution in `countFile`. */
export function spawnCountingNode(o: CountingNodeOptions): Promise<NodeProcess> {
  return spawnNodeProcess({
    args: [countingNodeScript],
    env: { COUNT_FILE: o.countFile, PORT: String(o.port ?? 0), DELAY_MS: String(o.delayMs ?? 0), NODE_ID: o.id ?? '', ...o.env },
  });
}

export interface PlainNodeOptions {
  /** Answer every invoke with this status (e.g. 503) instead of running it. */
  failStatus?: number;
  countFile?: string;
  port?: number;
  id?: string;
  delayMs?: number;
}

/** A node written with plain node:http, no SDK: `add` returns a + b from a JSON body. */
export function spawnPlainNode(o: PlainNodeOptions = {}): Promise<NodeProcess> {
  return spawnNodeProcess({
    args: [plainNodeScript],
    env: {
      PORT: String(o.port ?? 0),
      FAIL_STATUS: o.failStatus ? String(o.failStatus) : '',
      COUNT_FILE: o.countFile ?? '',
      NODE_ID: o.id ?? '',
      DELAY_MS: String(o.delayMs ?? 0),
    },
  });
}

/** Request ids recorded in a count file, one per execution. */
export function executions(countFile: string): string[] {
  if (!existsSync(countFile)) return [];
  return readFileSync(countFile, 'utf8').split('\n').filter((line) => line.length > 0);
}

/** Polls `condition` until true (generous default timeout, no fixed sleeps in tests). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The fault-test fleet: a slow SDK node, a victim SDK node (to be killed), a plain node answering 503; each records its executions. */
export interface FaultFleet {
  readonly dir: string;
  readonly files: { readonly slow: string; readonly victim: string; readonly failing: string };
  slow: NodeProcess;
  victim: NodeProcess;
  failing: NodeProcess;
  /** Request ids executed on any of the three (a repeat would show twice). */
  allExecutions(): string[];
  /** Kills every process and removes the folder. */
  cleanUp(): Promise<void>;
}

/** Starts the fault fleet; the victim listens on `victimPort` when given (so it can be restarted there). */
export async function spawnFaultFleet(o: { slowDelayMs: number; victimDelayMs: number; victimPort?: number }): Promise<FaultFleet> {
  const dir = mkdtempSync(join(tmpdir(), 'relaygate-faults-'));
  const files = { slow: join(dir, 'slow'), victim: join(dir, 'victim'), failing: join(dir, 'failing') };
  const [slow, victim, failing] = await Promise.all([
    spawnCountingNode({ countFile: files.slow, delayMs: o.slowDelayMs, id: 'slow' }),
    spawnCountingNode({ countFile: files.victim, delayMs: o.victimDelayMs, id: 'victim', ...(o.victimPort ? { port: o.victimPort } : {}) }),
    spawnPlainNode({ failStatus: 503, countFile: files.failing, id: 'failing' }),
  ]);
  const fleet: FaultFleet = {
    dir, files, slow, victim, failing,
    allExecutions: () => [...executions(files.slow), ...executions(files.victim), ...executions(files.failing)],
    async cleanUp() {
      await Promise.all([fleet.slow.kill(), fleet.victim.kill(), fleet.failing.kill()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fleet;
}
