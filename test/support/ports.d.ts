/** A port below the kernel's ephemeral range that was free a moment ago (see ports.js). */
export function freePort(): Promise<number>;
/** Whether `command` (a name looked up in PATH, or an absolute path) exists. */
export function onPath(command: string): boolean;
