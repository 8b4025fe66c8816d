/**
 * The key-to-line scanner behind `FILE:LINE` in config errors: every key's
 * line, past the parts of TOML that could hide a fake key or shift a line
 * (comments, multi-line strings and arrays, inline tables, quoted keys).
 * Each document is also parsed by smol-toml, so the cases are valid TOML.
 */
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { tomlLayout } from '../../src/util/toml-layout.js';

function lines(text: string): Record<string, number> {
  parse(text); // only valid TOML reaches the scanner
  return Object.fromEntries(tomlLayout(text).keyLines);
}

describe('tomlLayout: key lines', () => {
  it('plain keys, blank lines and comments', () => {
    expect(lines('# top\n\nport = 4443 # the port\nmax-sessions = 100\n\n  host="::"\n')).toEqual({ port: 3, 'max-sessions': 4, host: 6 });
  });

  it('multi-line arrays with comments and strings that look like keys or brackets', () => {
    const text = ['allow-local = [', '  "db:5432",   # the database', '  "x = 1",', "  ']',", '  # fake = 2', ']', 'after = 1'].join('\n');
    expect(lines(text)).toEqual({ 'allow-local': 1, after: 7 });
  });

  it('nested arrays and inline tables keep their own key only', () => {
    expect(lines('a = [[1, 2], [3]]\nt = { x = 1, y = "}" }\nb = 2')).toEqual({ a: 1, t: 2, b: 3 });
  });

  it('multi-line basic and literal strings, with quotes and escapes inside', () => {
    const text = ['s = """', 'fake = 1', 'a "quoted" \\""" word', '"""', "l = '''", "x = '' 2", "'''", 'q = """x""""', 'next = true'].join('\n');
    expect(lines(text)).toEqual({ s: 1, l: 5, q: 8, next: 9 });
  });

  it('a line-ending backslash in a multi-line string', () => {
    expect(lines('s = """one \\\n  two"""\nafter = 1')).toEqual({ s: 1, after: 3 });
  });

  it('one-line strings with # and escaped quotes', () => {
    expect(lines('a = "# not a comment \\" still"\nb = \'#\'\nc = 1')).toEqual({ a: 1, b: 2, c: 3 });
  });

  it('quoted and dotted keys', () => {
    expect(lines('"quoted key" = 1\n\'lit\' = 2\nsite . "a.b" = 3\nsite.c = 4')).toEqual({ 'quoted key': 1, lit: 2, site: 3, 'site.a.b': 3, 'site.c': 4 });
  });

  it('tables and arrays of tables', () => {
    const text = ['top = 1', '[users.alice]', 'tokens = ["sha256:1"]', '', '[ users . bob ]  # second', 'max-streams = 2', '[[fwd]]', 'p = 1', '[[fwd]]', 'p = 2'].join('\n');
    expect(lines(text)).toEqual({
      top: 1,
      users: 2,
      'users.alice': 2,
      'users.alice.tokens': 3,
      'users.bob': 5,
      'users.bob.max-streams': 6,
      fwd: 7,
      'fwd[0]': 7,
      'fwd[0].p': 8,
      'fwd[1]': 9,
      'fwd[1].p': 10,
    });
  });

  it('dates with a space and CRLF line ends', () => {
    expect(lines('when = 1979-05-27 07:32:00Z\r\nafter = 1\r\n')).toEqual({ when: 1, after: 2 });
  });

  it('a date with a space inside an inline table or an array', () => {
    const text = 't = { when = 1979-05-27 07:32:00, n = 1 }\na = [1979-05-27 07:32:00Z, 1980-01-01]\nafter = 1';
    parse(text);
    const layout = tomlLayout(text);
    expect(layout.complete).toBe(true);
    expect(Object.fromEntries(layout.keyLines)).toEqual({ t: 1, a: 2, after: 3 });
  });

  it('returns what it found before text it cannot follow', () => {
    const layout = tomlLayout('a = 1\nb = "unterminated\nc = 3');
    expect(Object.fromEntries(layout.keyLines)).toEqual({ a: 1 });
    expect(layout.complete).toBe(false);
  });
});

describe('tomlLayout: tables', () => {
  it('spans each [table] from the comments above its header to the end of its last value', () => {
    const text = [
      'top = 1', // 1
      '', // 2
      '# about alice', // 3
      '# more', // 4
      '[users.alice]', // 5
      'tokens = [', // 6
      '  "a", # [users.fake]', // 7
      ']', // 8
      '# a trailing comment goes with what follows', // 9
      '', // 10
      '[users."b.c"]', // 11
      's = """', // 12
      '[users.inside]', // 13
      '"""', // 14
      '[[list]]', // 15
      'x = 1', // 16
    ].join('\n');
    parse(text);
    const layout = tomlLayout(text);
    expect(layout.complete).toBe(true);
    expect(layout.tables).toEqual([
      { path: ['users', 'alice'], line: 5, firstLine: 3, lastLine: 8 },
      { path: ['users', 'b.c'], line: 11, firstLine: 11, lastLine: 14 },
    ]);
    expect(layout.arrayTables).toEqual([{ path: ['list'], line: 15 }]);
    expect(layout.keyLines.get('users.alice.tokens')).toBe(6);
  });

  it('a table with no keys ends at its header', () => {
    expect(tomlLayout('[a]\n\n[b]\nk = 1\n').tables).toEqual([
      { path: ['a'], line: 1, firstLine: 1, lastLine: 1 },
      { path: ['b'], line: 3, firstLine: 3, lastLine: 4 },
    ]);
  });
});
