// Types of sshd-files.js (plain JavaScript, shared with scripts/bench).

export declare const SSHD: string;
/** Writes a private sshd's keys and config into `dir` (see sshd-files.js); returns their paths. */
export declare const writeSshdFiles: (dir: string, extraConfig: readonly string[], comment: string) => { config: string; userKey: string; hostKeyPub: string };
