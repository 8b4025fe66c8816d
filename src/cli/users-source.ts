import { readUsersFile, UsersFileError, UsersFileErrorCode, type UsersFile } from '../state/index.js';
import { parsePortRange, parseTargetPatternOf, resolveUsers, type TunnelUser } from '../tunnel/index.js';
import { errorMessage } from '../util/errors.js';
import { OptionError } from '../util/validate.js';

/**
 * The users of `serve --users FILE`, checked for meaning by the tunnel
 * layer (patterns, port ranges, token hashes, limits) with each error at
 * the file's line and key: `users.toml:4: users.alice.max-streams: must be …`.
 * For the first start and for every reload.
 */
export async function loadUsers(path: string): Promise<TunnelUser[]> {
  return usersOf(await readUsersFile(path));
}

/** A read users file's records as the tunnel layer's users. */
export function usersOf(file: UsersFile): TunnelUser[] {
  const invalid = (where: string, message: string, cause?: unknown): UsersFileError => new UsersFileError(UsersFileErrorCode.INVALID, `${where}: ${message}`, { cause });
  const parsed = <T>(where: string, parse: () => T): T => {
    try {
      return parse();
    } catch (error) {
      throw invalid(where, errorMessage(error), error);
    }
  };
  const users = file.users.map((record): TunnelUser => {
    const { name, tokens, allowLocal, allowRemote, maxStreams, maxRemoteListeners, maxSessions } = record;
    return {
      name,
      tokens,
      ...(allowLocal ? { allowLocal: allowLocal.map((p) => parsed(file.where(name, 'allowLocal'), () => parseTargetPatternOf('allow-local', p))) } : {}),
      ...(allowRemote ? { allowRemote: allowRemote.map((p) => parsed(file.where(name, 'allowRemote'), () => parsePortRange(p, `allow-remote "${p}"`))) } : {}),
      ...(maxStreams !== undefined ? { maxStreams } : {}),
      ...(maxRemoteListeners !== undefined ? { maxRemoteListeners } : {}),
      ...(maxSessions !== undefined ? { maxSessions } : {}),
    };
  });
  try {
    return resolveUsers(users);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    // `users[2].tokens[0]` or `users[2].maxStreams`: said at that user's line and key.
    const match = /^users\[(\d+)\]\.(\w+)/.exec(error.field);
    const user = match ? users[Number(match[1])] : undefined;
    if (!user) throw error;
    const field = match![2] === 'name' ? undefined : (match![2] as Parameters<UsersFile['where']>[1]);
    throw invalid(file.where(user.name, field), `must be ${error.expected}${error.message.slice(error.message.lastIndexOf(', got '))}`, error);
  }
}
