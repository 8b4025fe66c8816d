import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { defaultStateDir, loadCertificateFiles, loadOrCreateServerCertificate, loadOrCreateToken, SERVER_CERT_FILE, SERVER_KEY_FILE, TOKEN_FILE } from '../state/index.js';
import { DEFAULT_WS_PATH } from '../transport/index.js';
import {
  DEFAULT_RESUME_GRACE_MS,
  defaultServerLimits,
  MIN_TOKEN_LENGTH,
  parsePortRange,
  parseTargetPatternOf,
  PROXY_PROTOCOL_VERSIONS,
  resolveServerLimits,
  resolveServerOptions,
  TunnelServer,
  type ProxyProtocolVersion,
  type ServerLimits,
  type ServerPolicy,
  type TunnelLogger,
  type TunnelServerOptions,
} from '../tunnel/index.js';
import { addCommonOptions, addConfigOptions, configHelp, collect, commonDefaults, drainFrom, logLevelFrom, sessionFlagNames, sessionFrom, type CommonFlags, type ConfigFlags } from './common-options.js';
import { checkOnly, formatCheck, type CheckReport, type Shown } from './config/check.js';
import { commandLine, mergeConfig, type Alternatives, type CommandLine, type Origin, type Settings } from './config/settings.js';
import { createLogger } from './logger.js';
import { parsePort } from './forward-spec.js';
import { asUsage, type FlagName } from './option-errors.js';
import { invocation, onShutdownSignal, type CommandContext } from './process.js';
import { tokenFrom } from './token-source.js';
import { UsageError } from './usage-error.js';
import { shellQuote } from '../util/shell-quote.js';
import { parseCount, parseSeconds } from './values.js';
import { loadUsers } from './users-source.js';
import { onReload } from './reload-trigger.js';
import { describeFailure } from '../util/errors.js';
import { addressText, serveControlHandlers } from './control-handlers.js';
import { addControlOptions, controlShown, openControl, planControl, type ControlFlags } from './control-listen.js';
import { METRICS_FLAG, METRICS_HELP, parseMetricsAddress, startMetrics, type MetricsAddress } from './metrics-option.js';

export interface ServeFlags extends CommonFlags, ConfigFlags, ControlFlags {
  host: string;
  port: string;
  cert?: string;
  key?: string;
  stateDir?: string;
  allowLocal?: string[];
  allowRemote?: string[];
  maxSessions?: string;
  maxUnauthenticated?: string;
  maxStreams?: string;
  maxRemoteListeners?: string;
  handshakeTimeout?: string;
  idleTimeout?: string;
  resumeGrace?: string;
  proxyProtocol?: ProxyProtocolVersion;
  wsListen?: string;
  wsPath?: string;
  tlsListen: boolean;
  users?: string;
  metrics?: string;
}

/** The limit flags: each names one field of ServerLimits, counted or in seconds. */
const LIMIT_FLAGS: ReadonlyArray<{ key: keyof ServeFlags & string; flag: string; field: keyof ServerLimits; seconds: boolean; help: string }> = [
  { key: 'maxSessions', flag: '--max-sessions', field: 'maxSessions', seconds: false, help: 'authenticated clients at once; more are refused with a clear error' },
  { key: 'maxUnauthenticated', flag: '--max-unauthenticated', field: 'maxUnauthenticated', seconds: false, help: 'connections still in the TLS handshake or authentication at once; more are dropped' },
  { key: 'maxStreams', flag: '--max-streams', field: 'maxStreams', seconds: false, help: 'forwarded connections open at once per client and direction; more are refused' },
  { key: 'maxRemoteListeners', flag: '--max-remote-listeners', field: 'maxRemoteListeners', seconds: false, help: '-R listeners one client may hold' },
  { key: 'handshakeTimeout', flag: '--handshake-timeout', field: 'handshakeTimeoutMs', seconds: true, help: 'time a new connection has for the TLS handshake and for authenticating' },
  { key: 'idleTimeout', flag: '--idle-timeout', field: 'idleTimeoutMs', seconds: true, help: 'close forwarded connections with no traffic for this long (0: never)' },
];

const FLAG_NAMES: Readonly<Record<string, FlagName>> = {
  ...sessionFlagNames,
  port: { flag: '--port' },
  token: { flag: '--token' },
  resumeGraceMs: { flag: '--resume-grace', seconds: true },
  proxyProtocol: { flag: '--proxy-protocol' },
  'webSocket.path': { flag: '--ws-path' },
  'webSocket.port': { flag: '--ws-listen' },
  'webSocket.host': { flag: '--ws-listen' },
  ...Object.fromEntries(LIMIT_FLAGS.map(({ flag, field, seconds }) => [`limits.${field}`, { flag, seconds }])),
};

export function serveCommand(context: CommandContext): Command {
  const command = new Command('serve')
    .description('accept TLS connections from `muxtun connect` clients and serve their -L and -R forwards')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'TLS port to listen on (0: any free port, printed at start)', '4443')
    .option('--cert <file>', 'your own TLS certificate (PEM); default: a self-signed one kept in the state dir')
    .option('--key <file>', 'the private key for --cert (PEM)')
    .option('--state-dir <dir>', 'where the generated certificate, key and token live (default: $XDG_STATE_HOME/muxtun or ~/.local/state/muxtun)')
    .option('--allow-local <pattern>', 'let -L reach only HOST:PORT targets matching this (repeatable; * and *.domain and port ranges work; default: anything)', collect)
    .option('--allow-remote <ports>', 'let -R bind only these ports or ranges (repeatable, e.g. 9000-9100; default: 1024-65535)', collect)
    .option('--ws-listen <[host:]port>', 'also accept clients over WebSocket (plain HTTP, for a reverse proxy that terminates TLS in front; host default 127.0.0.1)')
    .option('--ws-path <path>', `the path WebSocket upgrades are accepted at (default ${DEFAULT_WS_PATH}); others get a 404`)
    .option('--no-tls-listen', 'with --ws-listen: do not open the TLS port (--port) at all')
    .option('--users <file>', 'users, each with their own tokens and rights (TOML; see `muxtun users --help`); a token given too is the user "default"')
    .option('--resume-grace <seconds>', `keep a client's session this long after its link dropped, so its connections survive a reconnect (default ${DEFAULT_RESUME_GRACE_MS / 1000}; 0: off)`)
    .addOption(new Option('--proxy-protocol <version>', 'send -L targets a PROXY protocol header (v1 text, v2 binary) naming who connected to the client\'s -L listener, before the forwarded bytes').choices(PROXY_PROTOCOL_VERSIONS))
    .option(METRICS_FLAG, METRICS_HELP);
  for (const { flag, field, seconds, help } of LIMIT_FLAGS) {
    const fallback = defaultServerLimits[field];
    command.option(`${flag} <${seconds ? 'seconds' : 'n'}>`, `${help} (default ${seconds ? fallback / 1000 : fallback})`);
  }
  addControlOptions(command, 'serve');
  addCommonOptions(command, 'serve');
  addConfigOptions(command, 'serve');
  return command
    .addHelpText(
      'after',
      `
Examples:
  muxtun serve --port 4443
      First start creates a certificate and a token in the state dir and
      prints both with a ready-to-paste connect line.
  MUXTUN_TOKEN=\$(openssl rand -hex 16) muxtun serve --port 4443 --allow-remote 9000-9100
  muxtun serve --cert /etc/muxtun/cert.pem --key /etc/muxtun/key.pem --allow-local 'db.internal:5432'

Environment:
  MUXTUN_TOKEN    the token, if --token and --token-file are not given (${MIN_TOKEN_LENGTH}+ characters)

Also bounded (not flags): control messages 16 KiB, forward headers 1 KiB,
${defaultServerLimits.acceptBacklog} streams waiting to be served per client, ${defaultServerLimits.maxSessionBufferBytes / 2 ** 20} MiB of receive
window beyond 64 KiB per stream per client. Failed authentications from one
address slow down that address's next attempts (0.1 s doubling up to 10 s).`,
    )
    .addHelpText('after', configHelp('serve'))
    .action(async (_flags: ServeFlags, command: Command) => {
      const given = commandLine(command);
      if (given.values.check === true) {
        const checked = await checkOnly(resolveServeSettings(given, context, { check: true }));
        context.stdout.write(formatCheck(checked.settings, serveCheckReport(checked, context.env)));
        return;
      }
      const { flags, server: options, identity: material, tokenNote, drainMs, logLevel, logFormat, metrics } = await resolveServeSettings(given, context);
      if (material === undefined) throw new Error('serve: no server identity');
      const { token, webSocket, users } = options;
      const logger = createLogger(logLevel, logFormat);
      const server = new TunnelServer({ ...options, logger });
      // Listen for signals before anything is printed: whoever reads our
      // output may stop us at once, and must get a clean stop.
      const shutdownSignal = onShutdownSignal(context.stderr);
      let address;
      let stopMetrics: (() => Promise<void>) | undefined;
      try {
        address = await server.listen();
        if (metrics) stopMetrics = await startMetrics({ server }, metrics, logger);
      } catch (error) {
        shutdownSignal.dispose();
        await server.stop(0);
        throw error;
      }
      // After listen: a socket that answers means a server that runs. A --control FILE that cannot be used ends it (exit 1).
      const wsListening = server.webSocketAddress;
      const listening = [...new Set([addressText(address), ...(wsListening ? [addressText(wsListening)] : [])])];
      const controlHandlers = serveControlHandlers({ server, version: command.parent?.version() ?? '', listening, namedUsers: users !== undefined });
      const control = await openControl(planControl(flags, 'serve', context.env), 'serve', controlHandlers, logger).catch(async (error: unknown) => {
        shutdownSignal.dispose();
        await server.stop(0);
        throw error;
      });
      // The banner below shows the fingerprint on a terminal; where stdout goes
      // elsewhere (a service's /dev/null, a pipe), the log is where it is found.
      const onTerminal = (context.stdout as { isTTY?: boolean }).isTTY === true;
      logger.info({ address: `${address.address}:${address.port}`, ...(onTerminal ? {} : { fingerprint: material.fingerprint }) }, 'listening');
      if (tokenNote) logger.info({}, tokenNote);
      const wsAddress = server.webSocketAddress;
      if (wsAddress) {
        logger.info({ address: `${wsAddress.address}:${wsAddress.port}`, path: webSocket?.path ?? DEFAULT_WS_PATH }, 'listening for WebSockets (plain HTTP: put a TLS reverse proxy in front)');
        context.stdout.write(`muxtun WebSocket listener on ${wsAddress.address}:${wsAddress.port}${webSocket?.path ?? DEFAULT_WS_PATH}\n`);
      }

      const specific = flags.host !== '0.0.0.0' && flags.host !== '::';
      const shownHost = specific ? (flags.host.includes(':') ? `[${flags.host}]` : flags.host) : hostname();
      const run = context.invocation ?? invocation();
      if (users) logger.info({ file: flags.users, users: users.length }, 'users file loaded');
      context.stdout.write(
        `muxtun server listening on ${address.address}:${address.port}\n` +
          `fingerprint: ${material.fingerprint}${material.created ? ' (new identity)' : ''}\n` +
          (token !== undefined ? `token:       ${token}\n` : '') +
          (users ? `users:       ${users.length} in ${flags.users} (add one with: ${run} users add NAME --users ${shellQuote(flags.users!)})\n` : '') +
          `\nConnect with:\n` +
          `  MUXTUN_TOKEN=${token !== undefined ? `'${token}'` : '<the user\'s token>'} ${run} connect ${shownHost}:${address.port} --fingerprint ${material.fingerprint} -L 8080:localhost:80\n`,
      );

      const reload = onReload({
        files: [flags.config, flags.users].filter((file): file is string => typeof file === 'string'),
        reload: (why) => reloadServe(server, given, context, logger, why),
      });
      const signal = await shutdownSignal.received;
      reload.dispose();
      logger.info({ signal, drainMs }, 'shutting down: no new connections, letting open ones finish');
      const { drained } = await server.stop(drainMs).finally(() => control?.close());
      await stopMetrics?.();
      logger.info({ drained }, 'stopped');
    });
}

/**
 * SIGHUP, or a change to the config or users file: reads both again under
 * the same flags and hands the result to the server, which applies what it
 * can live and ends what is no longer allowed. A file that does not parse
 * or validate changes nothing; the reason goes to the log.
 */
async function reloadServe(server: TunnelServer, given: CommandLine, context: CommandContext, logger: TunnelLogger, why: string): Promise<void> {
  let result;
  try {
    const next = await resolveServeSettings(given, context);
    result = server.reconfigure({ ...next.server, logger });
  } catch (error) {
    logger.error({ why, error: describeFailure(error) }, 'configuration NOT reloaded; the running one stays');
    return;
  }
  if (result.restartNeeded.length > 0) {
    logger.warn({ why, settings: result.restartNeeded }, `changed but not applied: ${result.restartNeeded.join(', ')} (listening addresses and the TLS identity need a restart of serve)`);
  }
  logger.info({ why, applied: result.applied }, result.applied.length > 0 ? 'configuration reloaded' : 'configuration reloaded: nothing changed that applies live');
}

/** What `serve` runs with: flags and config file read, merged and validated. */
export interface ServeSettings {
  /** The merged values and where each came from. */
  settings: Settings;
  flags: ServeFlags;
  /** TunnelServer's options, accepted by its validator (resolveServerOptions); the logger is the caller's to add. */
  server: Omit<TunnelServerOptions, 'logger'>;
  /** The certificate's fingerprint; undefined only with `check` when the state dir has none yet. */
  identity: { fingerprint: string; created: boolean; where: string } | undefined;
  /** Where the token came from (the state dir's, generated or not, with `where`). */
  tokenOrigin: Origin;
  /** Logged at start: the state dir's token was generated or used. */
  tokenNote: string;
  stateDir: string;
  logLevel: string;
  logFormat: string | undefined;
  drainMs: number;
  /** Where `--metrics` serves, if given. */
  metrics: MetricsAddress | undefined;
}

/** serve's mutually exclusive options: a flag choosing one drops the file's others. */
const SERVE_ALTERNATIVES: readonly Alternatives[] = [[['token'], ['tokenFile']], [['logLevel'], ['quiet'], ['verbose']]];

/**
 * Reads the config file (--config) under the flags and validates the
 * result as a start would, the tunnel layer's validator included. Errors are
 * usage errors naming the flag, or `FILE:LINE: key` when the value came
 * from the file. Reads the token and certificate files; with `check`, writes
 * nothing: a token or certificate the state dir does not hold yet is
 * reported as to be generated. Call it again (a reload) to re-read the file.
 */
export async function resolveServeSettings(given: CommandLine, context: CommandContext, options: { check?: boolean } = {}): Promise<ServeSettings> {
  const configPath = given.values.config;
  const settings = await mergeConfig(given, { file: typeof configPath === 'string' ? configPath : undefined, secretKeys: ['token'], alternatives: SERVE_ALTERNATIVES });
  // The file's values were converted to the shapes commander gives (config-keys.ts).
  const flags = settings.values as unknown as ServeFlags;
  const name = (flag: string): string => settings.name(flag);
  const port = parsePort(flags.port, name('--port'), true);
  const drainMs = drainFrom(flags, name);
  const limits: Partial<ServerLimits> = {};
  for (const { key, flag, field, seconds } of LIMIT_FLAGS) {
    const text = flags[key];
    if (typeof text === 'string') limits[field] = seconds ? parseSeconds(text, name(flag)) : parseCount(text, name(flag));
  }
  const session = sessionFrom(flags, name);
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    settings.at(flags.cert !== undefined ? '--cert' : '--key', () => {
      throw new UsageError(flags.cert !== undefined ? '--cert and --key go together: give both or neither' : '--key and --cert go together: give both or neither');
    });
  }
  const policy: ServerPolicy = {
    allowLocal: (flags.allowLocal ?? []).map((p) => usage(() => parseTargetPatternOf(name('--allow-local'), p))),
    allowRemote: flags.allowRemote ? flags.allowRemote.map((p) => usage(() => parsePortRange(p, `${name('--allow-remote')} "${p}"`))) : [{ from: 1024, to: 65535 }],
  };
  const stateDir = flags.stateDir ?? defaultStateDir(context.env);

  const tokenFlag = flags.token !== undefined ? '--token' : '--token-file';
  let token = await settings.at(tokenFlag, () => tokenFrom(flags, context.env));
  let tokenOrigin: Origin = flags.token !== undefined ? settings.origin('token') : flags.tokenFile !== undefined ? settings.origin('tokenFile') : { kind: 'env', variable: 'MUXTUN_TOKEN' };
  let tokenNote = '';
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    settings.at(tokenFlag, () => {
      throw new UsageError(`the token has ${token?.length} characters; it needs at least ${MIN_TOKEN_LENGTH}, or a client could guess it. Leave it out and serve generates one, or make one with: openssl rand -hex 16`);
    });
  }
  // With --users, no token is made up: the users file says who gets in.
  const users = flags.users === undefined ? undefined : await loadUsers(flags.users);
  const webSocket = flags.wsListen === undefined ? undefined : { ...parseListenAddress(flags.wsListen, name('--ws-listen')), ...(flags.wsPath !== undefined ? { path: flags.wsPath } : {}) };
  if (webSocket === undefined && flags.wsPath !== undefined) settings.at('--ws-path', () => failUsage('--ws-path goes with --ws-listen'));
  if (webSocket === undefined && !flags.tlsListen) settings.at('--no-tls-listen', () => failUsage('--no-tls-listen needs --ws-listen: the server must listen somewhere'));
  const resumeGraceMs = flags.resumeGrace === undefined ? undefined : parseSeconds(flags.resumeGrace, name('--resume-grace'));
  const metricsText = flags.metrics;
  const metrics = metricsText === undefined ? undefined : settings.at('--metrics', () => parseMetricsAddress(metricsText, '--metrics'), metricsText);
  const settled: Omit<TunnelServerOptions, 'logger' | 'tls' | 'token'> = {
    ...(users ? { users } : {}),
    host: flags.host,
    port,
    tlsListen: flags.tlsListen,
    ...(webSocket ? { webSocket } : {}),
    policy,
    limits,
    session,
    ...(resumeGraceMs !== undefined ? { resumeGraceMs } : {}),
    ...(flags.proxyProtocol !== undefined ? { proxyProtocol: flags.proxyProtocol } : {}),
  };
  // Everything but the state dir is checked before the state dir is touched (or created).
  const placeholder = { token: 'x'.repeat(MIN_TOKEN_LENGTH), tls: { cert: '', key: '' } };
  const someToken = token !== undefined ? { token } : users ? {} : { token: placeholder.token };
  asUsage(FLAG_NAMES, () => resolveServerOptions({ ...settled, tls: placeholder.tls, ...someToken }), name);

  if (token === undefined && users === undefined) {
    const tokenPath = join(stateDir, TOKEN_FILE);
    if (options.check === true && !(stateHolds(stateDir, [TOKEN_FILE]))) {
      token = placeholder.token;
      tokenOrigin = { kind: 'other', where: `to be generated in ${tokenPath} at the first start` };
    } else {
      const stored = await loadOrCreateToken(stateDir);
      token = stored.token;
      tokenNote = stored.created ? `generated a token and stored it in ${stored.path}` : `using the token stored in ${stored.path}`;
      tokenOrigin = { kind: 'other', where: `state dir ${stored.path}` };
    }
  }
  let identity: ServeSettings['identity'];
  let tls: { cert: string; key: string };
  if (flags.cert !== undefined && flags.key !== undefined) {
    const material = await loadCertificateFiles(flags.cert, flags.key);
    tls = material;
    identity = { fingerprint: material.fingerprint, created: false, where: flags.cert };
  } else if (options.check === true && !(stateHolds(stateDir, [SERVER_CERT_FILE, SERVER_KEY_FILE]))) {
    tls = placeholder.tls;
  } else {
    const material = await loadOrCreateServerCertificate(stateDir);
    tls = material;
    identity = { fingerprint: material.fingerprint, created: material.created, where: join(stateDir, SERVER_CERT_FILE) };
  }

  const server: Omit<TunnelServerOptions, 'logger'> = { ...settled, tls, ...(token !== undefined ? { token } : {}) };
  return { settings, flags, server, identity, tokenOrigin, tokenNote, stateDir, logLevel: logLevelFrom(flags), logFormat: flags.logFormat, drainMs, metrics };
}

/** Whether the state dir holds all of `files` (so a check can read them without creating anything). */
function stateHolds(stateDir: string, files: readonly string[]): boolean {
  return files.every((file) => existsSync(join(stateDir, file)));
}

/** What `serve --check` prints beside the settings. */
function serveCheckReport(resolved: ServeSettings, env: NodeJS.ProcessEnv): CheckReport {
  const { settings, server, identity, tokenOrigin, stateDir } = resolved;
  const limits = resolveServerLimits(server.limits);
  const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);
  const byDefault = (value: unknown): Shown => ({ value, origin: { kind: 'default' } });
  const shown: Record<string, Shown | undefined> = {
    token: server.token === undefined ? undefined : { value: server.token, origin: tokenOrigin },
    'state-dir': byDefault(stateDir),
    'allow-remote': byDefault(['1024-65535']),
    'resume-grace': byDefault(seconds(server.resumeGraceMs ?? DEFAULT_RESUME_GRACE_MS)),
    ...commonDefaults(resolved.drainMs, resolved.logLevel),
    control: controlShown(resolved.flags, settings, 'serve', env),
  };
  for (const { flag, field, seconds: inSeconds } of LIMIT_FLAGS) shown[flag.slice(2)] = byDefault(inSeconds ? seconds(limits[field]) : limits[field]);
  return {
    header: [`muxtun serve: settings are valid${settings.file ? ` (config file ${settings.file.path})` : ''}`, 'precedence: flag > config file > environment > default; secrets are masked', ''],
    shown,
    secrets: ['token'],
    footer: [
      '',
      identity === undefined
        ? `certificate: to be generated in ${stateDir} at the first start`
        : `certificate: ${identity.where}, fingerprint ${identity.fingerprint}`,
      `listens on: ${server.tlsListen === false ? 'no TLS port' : `${server.host}:${server.port} (TLS)`}${server.webSocket ? `, ${server.webSocket.host}:${server.webSocket.port} (WebSocket)` : ''}`,
    ],
  };
}

function failUsage(message: string): never {
  throw new UsageError(message);
}

/** `[host:]port` of --ws-listen; the host defaults to 127.0.0.1 (it sits behind a reverse proxy on the same machine). */
function parseListenAddress(text: string, flag: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: '127.0.0.1', port: parsePort(text, flag, true) };
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new UsageError(`${flag} ${text}: the host is empty`);
  return { host, port: parsePort(text.slice(colon + 1), flag, true) };
}

/** Turns a policy parse error into a usage error (exit 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}
