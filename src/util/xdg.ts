import { isAbsolute, join } from 'node:path';

/** Environment variables as `process.env` holds them; tests pass their own. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Resolves an XDG base directory: `env[variable]` when it is set to an
 * absolute path, else `home/fallback`. The XDG spec says relative values are
 * invalid and must be ignored, which also keeps a stray `XDG_STATE_HOME=.`
 * from scattering keys into the working directory.
 */
export function xdgBaseDir(env: Env, variable: string, home: string, fallback: string): string {
  const value = env[variable];
  if (value !== undefined && value !== '' && isAbsolute(value)) return value;
  return join(home, fallback);
}
