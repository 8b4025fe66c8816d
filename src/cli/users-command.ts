import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { editUsersFile, readUsersFile, TOKEN_BYTES, USER_KEYS, type UserRecord } from '../state/index.js';
import { hashToken, parsePortRange, parseTargetPatternOf, resolveUsers, shortTokenHash } from '../tunnel/index.js';
import { errorMessage } from '../util/errors.js';
import { shellQuote } from '../util/shell-quote.js';
import { OptionError } from '../util/validate.js';
import type { CommandContext } from './process.js';
import { UsageError } from './usage-error.js';
import { usersOf } from './users-source.js';
import { collect, parseCount } from './values.js';

interface FileFlags {
  users: string;
}

interface AddFlags extends FileFlags {
  allowLocal?: string[];
  allowRemote?: string[];
  maxStreams?: string;
  maxRemoteListeners?: string;
  maxSessions?: string;
}

/**
 * `muxtun users add|add-token|remove-token|remove|list --users FILE`: the
 * users file of `serve --users`. A new token is printed once, alone on
 * stdout (so `TOKEN=$(muxtun users add …)` works); only its hash is kept.
 * What else there is to say goes to stderr.
 */
export function usersCommand(context: CommandContext): Command {
  const { stdout, stderr } = context;
  const users = new Command('users').description('manage the users file of `serve --users`: each user has its own tokens (kept as hashes) and rights');
  const fileOption = (command: Command): Command => command.requiredOption('--users <file>', 'the users file (TOML; created by the first `users add`)');
  const generate = (): { token: string; hash: string } => {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    return { token, hash: hashToken(token) };
  };
  const reloadHint = (file: string): string => `a running \`muxtun serve --users ${shellQuote(file)}\` applies it when it reloads the file`;

  fileOption(
    users
      .command('add <name>')
      .description('add a user with a new token; prints the token (only its hash is stored)')
      .option('--allow-local <pattern>', "HOST:PORT targets this user's -L/-D/-W may reach, instead of serve's --allow-local (repeatable)", collect)
      .option('--allow-remote <ports>', "ports this user's -R may bind, instead of serve's --allow-remote (repeatable)", collect)
      .option('--max-streams <n>', "forwarded connections open at once per session and direction, instead of serve's --max-streams")
      .option('--max-remote-listeners <n>', "-R listeners one session may hold, instead of serve's --max-remote-listeners")
      .option('--max-sessions <n>', "this user's sessions at once (default: only serve's --max-sessions counts)"),
  ).action(async (name: string, flags: AddFlags) => {
    try {
      resolveUsers([{ name, tokens: [] }]);
    } catch (error) {
      throw new UsageError(`user name "${name}": must be ${error instanceof OptionError ? error.expected : errorMessage(error)}`);
    }
    const record: UserRecord = { name, tokens: [] };
    if (flags.allowLocal) record.allowLocal = flags.allowLocal.map((p) => usage(() => (parseTargetPatternOf('--allow-local', p), p.trim())));
    if (flags.allowRemote) record.allowRemote = flags.allowRemote.map((p) => usage(() => (parsePortRange(p, `--allow-remote "${p}"`), p.trim())));
    if (flags.maxStreams !== undefined) record.maxStreams = parseCount(flags.maxStreams, '--max-streams');
    if (flags.maxRemoteListeners !== undefined) record.maxRemoteListeners = parseCount(flags.maxRemoteListeners, '--max-remote-listeners');
    if (flags.maxSessions !== undefined) record.maxSessions = parseCount(flags.maxSessions, '--max-sessions');
    const { token, hash } = generate();
    record.tokens.push(hash);
    await edit(flags.users, (list) => {
      if (list.some((u) => u.name === name)) throw new UsageError(`user ${name} is in ${flags.users} already; to give them another token: muxtun users add-token ${name} --users ${shellQuote(flags.users)}`);
      return [...list, record];
    });
    stdout.write(`${token}\n`);
    stderr.write(`muxtun: added user ${name} to ${flags.users}. The line above is their token: it is shown only this once (the file keeps its hash).\nmuxtun: ${reloadHint(flags.users)}.\n`);
  });

  fileOption(users.command('add-token <name>').description('give a user another token (to rotate: add one, move the clients over, remove the old one); prints it')).action(
    async (name: string, flags: FileFlags) => {
      const { token, hash } = generate();
      await edit(flags.users, (list) => {
        const user = find(list, name, flags.users);
        user.tokens.push(hash);
        return list;
      });
      stdout.write(`${token}\n`);
      stderr.write(`muxtun: user ${name} has a new token ${shortTokenHash(hash)} (the line above; shown only this once). Their other tokens still work.\nmuxtun: ${reloadHint(flags.users)}.\n`);
    },
  );

  fileOption(
    users
      .command('remove-token <name> <prefix>')
      .description('remove one of a user\'s tokens, named by the start of its hash as `users list` shows it (sha256:9f86d08); sessions that used it end at the reload'),
  ).action(async (name: string, prefix: string, flags: FileFlags) => {
    const wanted = prefix.replace(/…$/, '').toLowerCase();
    const full = wanted.startsWith('sha256:') ? wanted : `sha256:${wanted}`;
    if (!/^sha256:[0-9a-f]{4,64}$/.test(full)) throw new UsageError(`remove-token: "${prefix}" is not the start of a token hash (as \`users list\` shows them: sha256:9f86d08)`);
    let removed = '';
    await edit(flags.users, (list) => {
      const user = find(list, name, flags.users);
      const matches = user.tokens.filter((t) => t.toLowerCase().startsWith(full));
      if (matches.length === 0) throw new UsageError(`user ${name} has no token ${full}…; theirs: ${user.tokens.map(shortTokenHash).join(', ') || 'none'}`);
      if (matches.length > 1) throw new UsageError(`${full}… is the start of ${matches.length} of ${name}'s tokens; give more of it`);
      removed = matches[0]!;
      user.tokens = user.tokens.filter((t) => t !== removed);
      return list;
    });
    stderr.write(`muxtun: removed token ${shortTokenHash(removed)} from user ${name}; ${reloadHint(flags.users)}, and ends the sessions that used it.\n`);
  });

  fileOption(users.command('remove <name>').description("remove a user and all their tokens; their sessions end at the server's reload")).action(async (name: string, flags: FileFlags) => {
    await edit(flags.users, (list) => {
      find(list, name, flags.users);
      return list.filter((u) => u.name !== name);
    });
    stderr.write(`muxtun: removed user ${name} from ${flags.users}; ${reloadHint(flags.users)}, and ends their sessions.\n`);
  });

  fileOption(users.command('list').description('list the users: names, the start of each token hash, rights (never tokens)')).action(async (flags: FileFlags) => {
    const file = await readUsersFile(flags.users);
    usersOf(file);
    if (file.users.length === 0) stderr.write(`muxtun: no users in ${flags.users}; add one with: muxtun users add NAME --users ${shellQuote(flags.users)}\n`);
    for (const user of file.users) stdout.write(`${describeUser(user)}\n`);
  });

  return users.addHelpText(
    'after',
    `
Examples:
  muxtun users add alice --users /etc/muxtun/users.toml --allow-remote 9000-9010
      prints alice's token (once); give it to her as MUXTUN_TOKEN
  muxtun serve --users /etc/muxtun/users.toml
  muxtun users list --users /etc/muxtun/users.toml

The file keeps only sha256: hashes of the tokens: it is not a secret, but
whoever can write it can let themselves in (group/other-writable files are
refused). Commands rewrite only the table of the user they change; comments
elsewhere in the file stay.`,
  );
}

/** `alice  tokens: sha256:9f86d08…, sha256:1b4f0e9…  allow-local: db.internal:5432  max-streams: 200` */
export function describeUser(user: UserRecord): string {
  const parts = [user.name, `tokens: ${user.tokens.map(shortTokenHash).join(', ') || 'none'}`];
  if (user.allowLocal) parts.push(`allow-local: ${user.allowLocal.join(', ') || 'anything'}`);
  if (user.allowRemote) parts.push(`allow-remote: ${user.allowRemote.join(', ') || 'none'}`);
  if (user.maxStreams !== undefined) parts.push(`max-streams: ${user.maxStreams}`);
  if (user.maxRemoteListeners !== undefined) parts.push(`max-remote-listeners: ${user.maxRemoteListeners}`);
  if (user.maxSessions !== undefined) parts.push(`max-sessions: ${user.maxSessions}`);
  return parts.join('  ');
}

/** Edits the file, checking the result as serve would read it (nothing is written when it is not valid). */
async function edit(path: string, change: (users: UserRecord[]) => UserRecord[]): Promise<void> {
  await editUsersFile(path, (list) => {
    const after = change(list);
    usersOf({ path, users: after, where: (name, field) => `users.${name}${field ? `.${USER_KEYS[field]}` : ''}` });
    return after;
  });
}

function find(list: UserRecord[], name: string, path: string): UserRecord {
  const user = list.find((u) => u.name === name);
  if (!user) throw new UsageError(`no user ${name} in ${path} (see: muxtun users list --users ${shellQuote(path)})`);
  return user;
}

/** A pattern the tunnel layer refuses, as a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
