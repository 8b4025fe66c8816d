/**
 * Session resumption, tunnel side: forwarded connections that survive the
 * loss of the transport (`ResumableConn`), the session-wide bound on the
 * bytes they hold for replay (`ReplayBudget`), and the pure decisions of the
 * resume exchange (`decideResume`). No I/O of its own beyond the sockets and
 * streams it is given; no logging: it reports facts through hooks.
 */
export { ResumableConn, createConnContext, totalReplayBytes } from './conn.js';
export type { ConnContext, ConnEnd, ConnEndReason, ConnHooks, PeerReceived } from './conn.js';
export { ReplayBudget } from './budget.js';
export { defaultResumeConfig, resolveResumeConfig } from './config.js';
export type { ResumeConfig, ResumeOptions } from './config.js';
export { decideResume, resumeEntries } from './resume-state.js';
export type { ConnSnapshot, LocalResumeState, ResumeDecision, ResumeEntry, ResumeMessage } from './resume-state.js';
