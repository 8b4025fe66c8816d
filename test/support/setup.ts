/**
 * Loaded before every test file (vitest.config.ts setupFiles): each test
 * gets a scope of its own, closed after it, and whatever a file started
 * outside its tests is closed after the file; then any child process still
 * running is killed, so no test leaves one behind.
 */
import { afterAll, afterEach, beforeEach } from 'vitest';
import { killAll } from './process.js';
import { scopeHooks } from './scope.js';

beforeEach((context) => scopeHooks.beforeEach(context));
afterEach(() => scopeHooks.afterEach());
afterAll(async () => {
  try {
    await scopeHooks.afterAll();
  } finally {
    await killAll();
  }
});
