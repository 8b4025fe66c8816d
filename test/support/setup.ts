/**
 * Loaded before every test file (vitest.config.ts setupFiles): each test
 * gets a scope of its own, closed after it, and whatever a file started
 * outside its tests is closed after the file; then any child process still
 * running is killed, so no test leaves one behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { killAll } from './process.js';
import { scopeHooks } from './scope.js';

// Every muxtun a test file starts opens a control socket in $XDG_RUNTIME_DIR/muxtun/ by default:
// one of the file's own, never the user's (where `muxtun status` would find test processes).
const runtimeDir = mkdtempSync(join(tmpdir(), 'muxtun-rt-'));
process.env.XDG_RUNTIME_DIR = runtimeDir;

beforeEach((context) => scopeHooks.beforeEach(context));
afterEach(() => scopeHooks.afterEach());
afterAll(async () => {
  try {
    await scopeHooks.afterAll();
  } finally {
    await killAll();
    rmSync(runtimeDir, { recursive: true, force: true });
  }
});
