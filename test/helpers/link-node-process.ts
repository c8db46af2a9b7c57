// Spawns a compute node process built with the SDK, serving HTTP and the binary link
// (test/helpers/link-node.mjs, built code), and follows its JSON log lines.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnNodeProcess, type LogEntry } from './nodes.js';

const script = fileURLToPath(new URL('./link-node.mjs', import.meta.url));

export interface LinkNodeProcess {
  readonly child: ChildProcess;
  /** The node's HTTP port. */
  readonly port: number;
  readonly linkPort: number;
  /** Parsed stdout lines so far. */
  readonly entries: LogEntry[];
  readonly exited: Promise<number | string>;
  /** Request ids the node logged with `msg`. */
  seen(msg: 'started' | 'aborted'): string[];
  /** Kills the process (resuming it first if it was stopped). */
  stop(): Promise<void>;
}

/** Starts the node and waits until it listens. */
export async function spawnLinkNode(env: Record<string, string> = {}): Promise<LinkNodeProcess> {
  const node = await spawnNodeProcess({ args: [script], env });
  const listening = node.logs.find((e) => e.msg === 'listening')!;
  return {
    child: node.child,
    port: node.port,
    linkPort: listening.linkPort as number,
    entries: node.logs,
    exited: node.exited,
    seen: (msg) => node.logs.filter((e) => e.msg === msg).map((e) => e.requestId as string),
    async stop() {
      node.child.kill('SIGCONT');
      await node.kill();
    },
  };
}
