// The ComputeService of a gateway with no compute nodes configured: every Invoke is UNAVAILABLE.
import { Code, GatewayError } from '../errors.js';
import type { ComputeService, InvokeCall, InvokeSink } from './services.js';

/** Answers every invocation UNAVAILABLE "no compute nodes configured"; never ready for compute. */
export class NoComputeService implements ComputeService {
  invoke(_call: InvokeCall, sink: InvokeSink): void {
    sink.error(new GatewayError(Code.UNAVAILABLE, 'no compute nodes configured'));
  }

  ready(): boolean {
    return false;
  }

  async close(): Promise<void> {}
}
