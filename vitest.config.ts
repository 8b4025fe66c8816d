import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Per-test cleanup of processes, servers and temp dirs (test/support/scope.ts).
    setupFiles: ['test/support/setup.ts'],
    // Real sockets, TLS and child processes: give slow shared machines room,
    // but never let one hung test hold CI for long.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
