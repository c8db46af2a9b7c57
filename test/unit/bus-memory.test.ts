import { MemoryBus } from '../../src/bus/memory-bus.js';
import { busContract, type BusFactory } from '../contract/bus.case.js';

busContract('MemoryBus', (): BusFactory => {
  const made: MemoryBus[] = [];
  return {
    async make() {
      const bus = new MemoryBus();
      made.push(bus);
      return bus;
    },
    async cleanup() {
      await Promise.all(made.map((b) => b.close()));
    },
  };
});
