/** muxtun's programmatic API: the tunnel server and client, and the CLI's entry. */
export * from './tunnel/index.js';
export { MuxtunError } from './errors.js';
export { main } from './cli/main.js';
