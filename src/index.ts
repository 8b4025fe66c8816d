/**
 * muxtun's programmatic API: the tunnel server and client. Importing it
 * loads no CLI code (commander, pino); the CLI is bin/muxtun.js.
 */
export * from './tunnel/index.js';
export { MuxtunError, InvalidArgumentError } from './errors.js';
