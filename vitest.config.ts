import { defineConfig } from 'vitest/config';

// Integration tests start real gateways, nodes and redis-servers as processes; two cores here,
// so files run two at a time and each test gets generous time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: ['default', ['json', { outputFile: '.test-results/results.json' }]],
  },
});
