/** Files for tests: temp dirs that go with their scope, and permission bits. */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentScope, type Scope } from './scope.js';

/** A fresh directory under the system temp dir, removed when the scope closes. */
export async function tempDir(prefix = 'muxtun-test-', scope: Scope = currentScope()): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scope.add(() => rm(dir, { recursive: true, force: true }), 'fs');
  return dir;
}

/** The permission bits of a file or directory (0o600, 0o700...). */
export async function fileMode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}
