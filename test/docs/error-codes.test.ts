/**
 * The README's error table is the reference users match codes against: it
 * must list every code the source can raise, and nothing that no longer exists.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/process.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
}

describe('the README error table', () => {
  it('lists exactly the ERR_MUXTUN_* and ERR_MUXADO_* codes the source defines', () => {
    const inSource = new Set<string>();
    for (const file of sourceFiles(join(repoRoot, 'src'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/['"`](ERR_MUX(?:TUN|ADO)_[A-Z_]+)['"`]/g)) inSource.add(match[1]!);
    }
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Errors'), readme.indexOf('\n## ', readme.indexOf('## Errors') + 1));
    const inTable = new Set([...section.matchAll(/^\| `(ERR_MUX(?:TUN|ADO)_[A-Z_]+)` \|/gm)].map((m) => m[1]!));
    expect(inSource.size).toBeGreaterThan(30);
    expect([...inSource].filter((code) => !inTable.has(code)).sort(), 'codes missing from the README table').toEqual([]);
    expect([...inTable].filter((code) => !inSource.has(code)).sort(), 'codes in the README table that the source no longer has').toEqual([]);
  });
});
