/**
 * Shared by every e2e file: fail fast and clearly without a build, and
 * kill any child a failed test left running.
 */
import { afterAll } from 'vitest';
import { assertBuilt, killAll } from './helpers/process.js';

assertBuilt();
afterAll(killAll);
