// Types of ports.js (plain JavaScript, shared with scripts/bench).

/** A port below the kernel's ephemeral range that was free a moment ago. */
export declare const freePort: () => Promise<number>;
/** Whether `command` (a name looked up in PATH, or an absolute path) exists. */
export declare const onPath: (command: string) => boolean;
/** Resolves once 127.0.0.1:`port` accepts a connection; rejects when the program exits first or after `timeoutMs`. */
export declare const waitForListening: (port: number, program: { name: string; exited(): boolean; tail(): string }, timeoutMs: number) => Promise<void>;
