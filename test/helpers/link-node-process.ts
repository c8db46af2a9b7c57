// Spawns a compute node process built with the SDK, serving HTTP and the binary link
// (test/helpers/link-node.mjs, built code), and follows its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { until } from './node-calls.js';

const script = fileURLToPath(new URL('./link-node.mjs', import.meta.url));

export interface LinkNodeProcess {
  readonly child: ChildProcess;
  /** The node's HTTP port. */
  readonly port: number;
  readonly linkPort: number;
  /** Parsed stdout lines so far. */
  readonly entries: { msg: string; requestId?: string }[];
  readonly exited: Promise<number | string>;
  /** Request ids the node logged with `msg`. */
  seen(msg: 'started' | 'aborted'): string[];
  stop(): Promise<void>;
}

/** Starts the node and waits until it listens. */
export async function spawnLinkNode(env: Record<string, string> = {}): Promise<LinkNodeProcess> {
  const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const entries: { msg: string; requestId?: string; port?: number; linkPort?: number }[] = [];
  let stderr = '';
  let buffered = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try { entries.push(JSON.parse(line)); } catch { /* not ours */ }
    }
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let gone = false;
  void exited.then(() => { gone = true; });
  await until(() => gone || entries.some((e) => e.msg === 'listening'), 20_000, 'link node to listen');
  if (gone) throw new Error(`link node exited before listening: ${stderr}`);
  const listening = entries.find((e) => e.msg === 'listening')!;
  return {
    child,
    port: listening.port!,
    linkPort: listening.linkPort!,
    entries,
    exited,
    seen: (msg) => entries.filter((e) => e.msg === msg).map((e) => e.requestId!),
    async stop() {
      if (gone) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
