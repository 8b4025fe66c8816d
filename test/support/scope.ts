/**
 * What a test started (processes, servers, sockets, temp dirs) is torn down
 * when it finishes, however it ends. Every helper that starts something
 * registers it with a {@link Scope}:
 *
 * - by default the current test's scope, closed after it (setup.ts installs
 *   the hooks); outside a test (beforeAll, module level) the file's scope,
 *   closed after the file;
 * - in a concurrent test (`describe.concurrent`), where "the current test" is
 *   ambiguous, pass `new Scope(context)` to the helpers: it closes when that
 *   test finishes. Anything started there without one is closed with the file.
 */
import net from 'node:net';
import type { TestContext } from 'vitest';

export type Cleanup = () => unknown;

/** Cleanups run phase by phase: processes die before their temp dirs go. */
export type Phase = 'process' | 'net' | 'fs';
const PHASES: readonly Phase[] = ['process', 'net', 'fs'];

export class Scope {
  readonly #cleanups = new Map<Phase, Cleanup[]>(PHASES.map((phase) => [phase, []]));

  /** With a test context: closed when that test finishes (the way for concurrent tests). */
  constructor(context?: Pick<TestContext, 'onTestFinished'>) {
    context?.onTestFinished(() => this.close());
  }

  add(cleanup: Cleanup, phase: Phase = 'net'): void {
    this.#cleanups.get(phase)!.push(cleanup);
  }

  /** Runs every cleanup (those of a phase at once); fails with the first error after all ran. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const phase of PHASES) {
      const results = await Promise.allSettled(this.#cleanups.get(phase)!.splice(0).map(async (cleanup) => cleanup()));
      for (const result of results) if (result.status === 'rejected') errors.push(result.reason);
    }
    if (errors.length > 0) throw errors[0];
  }
}

let fileScope = new Scope();
let testScope: Scope | undefined;

/** The scope helpers register with when they are given none. */
export function currentScope(): Scope {
  return testScope ?? fileScope;
}

/** For setup.ts: a scope of its own for each test that does not run concurrently. */
export const scopeHooks = {
  beforeEach(context: TestContext): void {
    testScope = context.task.concurrent ? undefined : new Scope();
  },
  async afterEach(): Promise<void> {
    const scope = testScope;
    testScope = undefined;
    await scope?.close();
  },
  async afterAll(): Promise<void> {
    const scope = fileScope;
    fileScope = new Scope();
    await scope.close();
  },
};

/** Stops a server listening, or destroys a socket (or anything with destroy()), when the scope closes. */
export function track<T extends { destroy(): unknown } | net.Server>(thing: T, scope: Scope = currentScope()): T {
  scope.add(() => {
    // Not awaited: a server's close() waits for connections that may be open still.
    if (thing instanceof net.Server) thing.close();
    else thing.destroy();
  });
  return thing;
}
