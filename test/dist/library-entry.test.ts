/**
 * `import … from 'muxtun'` is the tunnel API, for programs that embed it:
 * it must not drag in the CLI (commander, pino, pino-pretty).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

describe('the library entry points', () => {
  it('load no CLI package', async () => {
    // A resolve hook that records every bare specifier the entry points pull in.
    const hooks = `export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('.') && !specifier.startsWith('node:') && !specifier.startsWith('file:')) process.stderr.write('BARE ' + specifier + '\\n');
  return next(specifier, context);
}`;
    const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
    const program = `await import(${JSON.stringify(join(root, 'dist', 'index.js'))}); await import(${JSON.stringify(join(root, 'dist', 'muxado', 'index.js'))}); console.log('ok');`;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', program]);
    expect(stdout.trim()).toBe('ok');
    const bare = stderr.split('\n').filter((l) => l.startsWith('BARE ')).map((l) => l.slice(5));
    expect(bare).not.toContain('commander');
    expect(bare.filter((name) => name.startsWith('pino'))).toEqual([]);
  });
});
