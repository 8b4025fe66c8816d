/**
 * The users file: what it reads, each kind of mistake named at FILE:line
 * with its key, edits that rewrite only the changed user's table, atomic
 * writes, and the refusal of a file others can write.
 */
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { usersOf } from '../../src/cli/users-source.js';
import { editUsersFile, readUsersFile } from '../../src/state/index.js';
import { fileMode, tempDir } from '../support/fs.js';
import { rejection } from '../support/wait.js';

const H1 = `sha256:${'a'.repeat(64)}`;
const H2 = `sha256:${'b'.repeat(64)}`;

async function usersFile(text: string): Promise<string> {
  const path = join(await tempDir('muxtun-users-'), 'users.toml');
  await writeFile(path, text, { mode: 0o644 });
  return path;
}

const EXAMPLE = `# the team
[users.alice]
tokens = ["${H1}"]
allow-local = ["db.internal:5432", "*.internal:*"]
allow-remote = ["9000-9010"]
max-streams = 200

# CI
[users.ci]
tokens = [
  "${H2}",
]
max-sessions = 2
`;

describe('readUsersFile', () => {
  it('reads each [users.NAME] table, and the tunnel layer makes users of them', async () => {
    const file = await readUsersFile(await usersFile(EXAMPLE));
    expect(file.users).toEqual([
      { name: 'alice', tokens: [H1], allowLocal: ['db.internal:5432', '*.internal:*'], allowRemote: ['9000-9010'], maxStreams: 200 },
      { name: 'ci', tokens: [H2], maxSessions: 2 },
    ]);
    expect(usersOf(file)).toEqual([
      { name: 'alice', tokens: [H1], allowLocal: [{ host: 'db.internal', ports: { from: 5432, to: 5432 } }, { host: '*.internal', ports: { from: 1, to: 65535 } }], allowRemote: [{ from: 9000, to: 9010 }], maxStreams: 200 },
      { name: 'ci', tokens: [H2], maxSessions: 2 },
    ]);
  });

  it('reads an empty file as no users', async () => {
    expect((await readUsersFile(await usersFile('# nobody yet\n'))).users).toEqual([]);
  });

  it.each([
    ['TOML that does not parse', '[users.a]\ntokens = [\n', /:3: not valid TOML/],
    ['an unknown key, at its line', `[users.a]\ntokens = []\nallow-locals = ["x:1"]\n`, /:3: users\.a\.allow-locals: unknown key/],
    ['a wrong type', `[users.a]\ntokens = []\nmax-streams = "200"\n`, /:3: users\.a\.max-streams: must be a whole number, got "200"/],
    ['tokens that are not strings', `[users.a]\ntokens = [1]\n`, /:2: users\.a\.tokens: must be a list of strings/],
    ['no tokens key', `[users.a]\nmax-streams = 1\n`, /:1: users\.a\.tokens: missing/],
    ['an unknown table', `[server]\nport = 1\n`, /:1: \[server\]: unknown table/],
    ['an unknown top-level key', `port = 1\n`, /:1: port: unknown key/],
    ['a user not in its own table', `[users]\na = { tokens = [] }\n`, /:1: users\.a: write each user as its own \[users\.a\] table/],
  ])('refuses %s, naming FILE:line and the key', async (_what, text, message) => {
    const path = await usersFile(text);
    const error = await rejection(readUsersFile(path));
    expect(error.code).toBe('ERR_MUXTUN_USERS_INVALID');
    expect(error.message.startsWith(path)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it.each([
    ['a bad pattern', `[users.a]\ntokens = []\n\nallow-local = ["nohost"]\n`, /:4: users\.a\.allow-local: allow-local "nohost": expected HOST:PORT/],
    ['a bad port range', `[users.a]\ntokens = []\nallow-remote = ["9-1"]\n`, /:3: users\.a\.allow-remote: allow-remote "9-1": "9-1" starts after it ends/],
    ['a bad hash', `[users.a]\ntokens = ["sha256:00"]\n`, /:2: users\.a\.tokens: must be sha256: and the 64 hex digits/],
    ['a hash two users have', `[users.a]\ntokens = ["${H1}"]\n[users.b]\ntokens = ["${H1}"]\n`, /:4: users\.b\.tokens: must be a token hash of this user only \(user a has it too\)/],
    ['a limit out of range', `[users.a]\ntokens = []\nmax-streams = 0\n`, /:3: users\.a\.max-streams: must be an integer from 1/],
    ['a bad name', `[users."a b"]\ntokens = []\n`, /:1: users\.a b: must be 1-64 letters/],
  ])('refuses %s, where the tunnel layer checks the value', async (_what, text, message) => {
    const path = await usersFile(text);
    const error = await rejection(readUsersFile(path).then(usersOf));
    expect(error.code).toBe('ERR_MUXTUN_USERS_INVALID');
    expect(error.message).toMatch(message);
  });

  it('refuses a missing file with how to create one, and a file group or others can write with the chmod', async () => {
    const dir = await tempDir('muxtun-users-');
    const missing = await rejection(readUsersFile(join(dir, 'none.toml')));
    expect(missing.code).toBe('ERR_MUXTUN_USERS_READ');
    expect(missing.message).toContain('muxtun users add NAME --users');
    const path = await usersFile(EXAMPLE);
    await chmod(path, 0o664);
    const open = await rejection(readUsersFile(path));
    expect(open.code).toBe('ERR_MUXTUN_STATE_PERMISSIONS');
    expect(open.message).toContain(`chmod go-w ${path}`);
  });
});

describe('editUsersFile', () => {
  it('creates the file (0644) and appends users', async () => {
    const path = join(await tempDir('muxtun-users-'), 'users.toml');
    await editUsersFile(path, (users) => [...users, { name: 'alice', tokens: [H1], allowRemote: ['9000'] }]);
    expect(await fileMode(path)).toBe(0o644);
    expect((await readUsersFile(path)).users).toEqual([{ name: 'alice', tokens: [H1], allowRemote: ['9000'] }]);
  });

  it('rewrites only the changed table, removes a user with the comment above it, and keeps the rest as written', async () => {
    const path = await usersFile(EXAMPLE);
    await chmod(path, 0o600);
    await editUsersFile(path, (users) => users.map((u) => (u.name === 'alice' ? { ...u, tokens: [...u.tokens, `sha256:${'c'.repeat(64)}`] } : u)));
    let text = await readFile(path, 'utf8');
    expect(text.startsWith('# the team\n[users.alice]\n')).toBe(true);
    expect(text).toContain(`# CI\n[users.ci]\ntokens = [\n  "${H2}",\n]\nmax-sessions = 2\n`);
    expect((await readUsersFile(path)).users[0]!.tokens).toHaveLength(2);
    await editUsersFile(path, (users) => users.filter((u) => u.name !== 'ci'));
    text = await readFile(path, 'utf8');
    expect(text).not.toContain('# CI');
    expect((await readUsersFile(path)).users.map((u) => u.name)).toEqual(['alice']);
    // The mode it had is kept, and no temp file is left behind.
    expect(await fileMode(path)).toBe(0o600);
    expect(await readdir(join(path, '..'))).toEqual(['users.toml']);
  });

  it('writes nothing when the edit throws', async () => {
    const path = await usersFile(EXAMPLE);
    await expect(editUsersFile(path, () => { throw new Error('no'); })).rejects.toThrow('no');
    expect(await readFile(path, 'utf8')).toBe(EXAMPLE);
  });
});
