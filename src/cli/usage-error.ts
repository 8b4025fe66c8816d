import { MuxtunError } from '../errors.js';

/** The command line is wrong: exit code 2, message names the bad part. */
export class UsageError extends MuxtunError {
  constructor(message: string) {
    super('ERR_MUXTUN_USAGE', message);
  }
}
