import { readTokenFile } from '../state/index.js';
import { UsageError } from './usage-error.js';

/** The token from --token, --token-file or MUXTUN_TOKEN, in that order; undefined if none. */
export async function tokenFrom(options: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (options.token !== undefined && options.tokenFile !== undefined) throw new UsageError('--token and --token-file: give one, not both');
  if (options.token !== undefined) {
    if (options.token.trim() === '') throw new UsageError('--token: the token is empty');
    return options.token;
  }
  if (options.tokenFile !== undefined) return readTokenFile(options.tokenFile);
  const fromEnv = env.MUXTUN_TOKEN;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}
