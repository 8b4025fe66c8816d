// Types of ports.js (plain JavaScript, shared with scripts/bench).

/** A port below the kernel's ephemeral range that was free a moment ago. */
export declare const freePort: () => Promise<number>;
/** Whether `command` (a name looked up in PATH, or an absolute path) exists. */
export declare const onPath: (command: string) => boolean;
/** Whether 127.0.0.1:`port` accepts a TCP connection now (for programs that say nothing when ready). */
export declare const portAccepts: (port: number) => Promise<boolean>;
