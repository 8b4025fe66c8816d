import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { defaultKnownHostsFile, knownHostsFile } from '../state/index.js';
import { parseFingerprint, type ClientTrust } from '../tls/index.js';
import { defaultClientTimings, parseTargetPatternOf, PROXY_PROTOCOL_VERSIONS, resolveClientOptions, TunnelClient, type ClientReconfigureReport, type ForwardSpec, type ProxyProtocolVersion, type TunnelClientOptions, type TunnelLogger } from '../tunnel/index.js';
import { parseProxyUrl, parseWebSocketUrl, redactUrl, WEBSOCKET_MODES, type ProxyConfig, type WebSocketMode } from '../transport/index.js';
import { addCommonOptions, addConfigOptions, configHelp, collect, commonDefaults, drainFrom, logLevelFrom, sessionFlagNames, sessionFrom, type CommonFlags, type ConfigFlags } from './common-options.js';
import { checkOnly, formatCheck, type CheckReport, type Shown } from './config/check.js';
import { defaultConfigFile } from './config/config-file.js';
import { commandLine, mergeConfig, type Alternatives, type CommandLine, type Origin, type Settings } from './config/settings.js';
import { parseDynamicSpec, parseForwardSpec, parseServerAddress } from './forward-spec.js';
import { forwardStdio } from './stdio-forward.js';
import { createLogger } from './logger.js';
import { asUsage, type FlagName } from './option-errors.js';
import { onShutdownSignal, type CommandContext } from './process.js';
import { tokenFrom } from './token-source.js';
import { UsageError } from './usage-error.js';
import { parseSeconds } from './values.js';
import { onReload } from './reload-trigger.js';
import { describeFailure } from '../util/errors.js';
import { connectControlHandlers } from './control-handlers.js';
import { addControlOptions, controlShown, openControl, planControl, type ControlFlags } from './control-listen.js';
import { METRICS_FLAG, METRICS_HELP, parseMetricsAddress, startMetrics, type MetricsAddress } from './metrics-option.js';

export interface ConnectFlags extends CommonFlags, ConfigFlags, ControlFlags {
  local?: string[];
  remote?: string[];
  dynamic?: string[];
  stdio?: string;
  allowTarget?: string[];
  fingerprint?: string;
  ca?: string;
  insecure?: boolean;
  knownHosts?: string;
  servername?: string;
  reconnect: boolean;
  reconnectMax?: string;
  keepGoing?: boolean;
  resume: boolean;
  proxy?: string;
  wsMode?: WebSocketMode;
  proxyProtocol?: ProxyProtocolVersion;
  metrics?: string;
}

const FLAG_NAMES: Readonly<Record<string, FlagName>> = {
  ...sessionFlagNames,
  'timings.backoffCapMs': { flag: '--reconnect-max', seconds: true },
  proxyProtocol: { flag: '--proxy-protocol' },
  wsMode: { flag: '--ws-mode' },
};

export function connectCommand(context: CommandContext): Command {
  const command = new Command('connect')
    .description('connect to a muxtun server and forward ports through it (-L: here to there, -R: there to here, -D: SOCKS, -W: stdio)')
    .argument('[host:port | wss://host/path]', 'the server: host:port for its TLS port, or a wss:// / ws:// URL behind a reverse proxy (default: $MUXTUN_SERVER)')
    .option('--proxy <url>', 'reach the server through this proxy: http://[user:pass@]host:port (CONNECT), socks5:// or socks5h:// (default: $MUXTUN_PROXY; for wss:// servers also HTTPS_PROXY/NO_PROXY; "direct": none)')
    .addOption(
      new Option(
        '--ws-mode <mode>',
        'for a ws:// or wss:// server, how the tunnel\'s TLS travels in the WebSocket: "stream" (default), TLS straight on the connection after one frame header, as fast as a TLS port, for reverse proxies that pass the upgraded connection through (nginx, Caddy, HAProxy); "messages", 16 KiB binary messages, for proxies and CDNs that inspect or re-frame WebSocket messages, and for servers older than stream mode',
      ).choices(WEBSOCKET_MODES),
    )
    .option('-L, --local <[bind:]port:host:hostport>', 'listen here on port (bind default 127.0.0.1); the server dials host:hostport (repeatable)', collect)
    .option('-R, --remote <[bind:]port[:host:hostport]>', 'the server listens on port (bind default 0.0.0.0); this side dials host:hostport, or with no target what each SOCKS client asks for (repeatable; ,proxy-protocol=v1|v2|off after the target: see --proxy-protocol)', collect)
    .option('-D, --dynamic <[bind:]port>', 'a SOCKS4/4a/5 server here (bind default 127.0.0.1); the server resolves and dials what each client asks for (repeatable)', collect)
    .addOption(new Option('--proxy-protocol <version>', 'write a PROXY protocol header (v1 text, v2 binary) naming who connected to the server\'s -R listener before the forwarded bytes, for every -R with a target (one -R: add ,proxy-protocol=v1|v2|off to it)').choices(PROXY_PROTOCOL_VERSIONS))
    .option('--allow-target <host:port>', 'what a reverse dynamic -R may reach from this side: *, *.domain, port ranges, as serve --allow-local (repeatable; default anything)', collect)
    .option('-W, --stdio <host:port>', 'standard input and output become one connection to host:port, dialled by the server (for ssh ProxyCommand)')
    .option('--fingerprint <sha256:HEX>', 'trust only the server certificate with this fingerprint (printed by `muxtun serve`)')
    .option('--ca <file>', 'verify the server with these CA certificates (PEM) and its host name')
    .option('--insecure', 'do not verify the server at anything (encrypted, but anyone in the path can pose as the server)')
    .option('--known-hosts <file>', 'where trust-on-first-use records servers (default: ~/.config/muxtun/known_hosts)')
    .option('--servername <name>', 'TLS server name (SNI and --ca host check) when it differs from HOST')
    .option('--no-reconnect', 'exit at the first failure to reach the server, or when the session drops, instead of retrying')
    .option('--reconnect-max <seconds>', `longest wait between attempts to reach the server (default ${defaultClientTimings.backoffCapMs / 1000})`)
    .option('--no-resume', 'reset forwarded connections when the link drops, instead of keeping them for the reconnect')
    .option('--keep-going', 'run with the forwards that work when some cannot be set up at start (default: exit 1, naming the forward)')
    .option(METRICS_FLAG, METRICS_HELP);
  addControlOptions(command, 'connect');
  addCommonOptions(command, 'connect');
  addConfigOptions(command, 'connect', '~/.config/muxtun/connect.toml');
  return command
    .addHelpText(
      'after',
      `
Examples:
  export MUXTUN_TOKEN=...            # printed by \`muxtun serve\`
  muxtun connect tunnel.example.com:4443 -L 8080:localhost:80
      curl localhost:8080 reaches port 80 on the server's side.
  muxtun connect tunnel.example.com:4443 -R 9000:localhost:3000
      tunnel.example.com:9000 reaches port 3000 on this machine.
  MUXTUN_SERVER=tunnel.example.com:4443 muxtun connect -L 5432:db.internal:5432 -R 9000:localhost:3000
  muxtun connect tunnel.example.com:4443 -D 1080
      curl --socks5-hostname localhost:1080 ... goes out from the server's side.
  ssh -o ProxyCommand='muxtun connect tunnel.example.com:4443 -W %h:%p' user@internal-host

Reaching the server: an unreachable server (refused, timed out, DNS down) is
retried with backoff (0.5 s doubling to --reconnect-max), at start too; a
wrong token or an untrusted server exits 1 at once.

Trust (like ssh): the first connection records the server's fingerprint in
known_hosts and later ones insist on it; --fingerprint pins it up front;
--ca checks a CA-signed certificate; --insecure checks nothing.

Environment:
  MUXTUN_SERVER   host:port (or wss:// URL) of the server, if not given as an argument
  MUXTUN_PROXY    the proxy, if --proxy is not given
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY   honoured for wss:// and ws:// servers only, as other HTTP clients do
  MUXTUN_TOKEN    the token, if --token and --token-file are not given`,
    )
    .addHelpText('after', configHelp('connect'))
    .action(async (_target: string | undefined, _flags: ConnectFlags, command: Command) => {
      const given = commandLine(command);
      if (given.values.check === true) {
        const checked = await checkOnly(resolveConnectSettings(given, context));
        context.stdout.write(formatCheck(checked.settings, connectCheckReport(checked, context.env)));
        return;
      }
      const { client: options, stdio, logLevel, logFormat, drainMs, settings, flags, server, metrics } = await resolveConnectSettings(given, context);
      const { remote = [], allowTarget = [], trust } = options;
      const logger = createLogger(logLevel, logFormat);
      const client = new TunnelClient({ ...options, logger });
      if (remote.some((spec) => spec.dynamic === true) && allowTarget.length === 0) {
        logger.warn({}, 'reverse dynamic -R without --allow-target: whoever reaches the server\'s port can reach anything this side can reach');
      }
      if (trust.kind === 'insecure') logger.warn({}, '--insecure: the server is not verified; anyone in the network path can pose as it');
      // Bound before connecting, as -L is: a port in use is fatal at once.
      const stopMetrics = metrics ? await startMetrics({ client }, metrics, logger) : undefined;
      const shutdownSignal = onShutdownSignal(context.stderr);
      const running = client.run();
      // Observed below; this only keeps a rejection while the control socket opens from counting as unhandled.
      running.catch(() => {});
      const controlHandlers = connectControlHandlers({ client, server: server.text, version: command.parent?.version() ?? '', fixedForwards: stdio !== undefined });
      const control = await openControl(planControl(flags, 'connect', context.env, { stdio: stdio !== undefined }), 'connect', controlHandlers, logger).catch(async (error: unknown) => {
        shutdownSignal.dispose();
        await client.stop(0);
        throw error;
      });
      if (stdio) {
        // Done when both directions ended (exit 0), or the dial failed (exit 1, its reason on stderr).
        const carried = forwardStdio(client, stdio.host, stdio.port, context.stdin ?? process.stdin, context.stdout);
        try {
          await Promise.race([carried, running.then(() => carried)]);
        } finally {
          shutdownSignal.dispose();
          await client.stop(0);
          await control?.close();
          await stopMetrics?.();
        }
        return;
      }
      // SIGHUP reloads the config file (not -W: its one connection has nothing to reload).
      const reload = onReload({ files: [], reload: (why) => reloadConnect(client, given, context, logger, why, settings.file?.path) });
      const stopping = shutdownSignal.received.then(async (signal) => {
        reload.dispose();
        logger.info({ signal, drainMs }, 'shutting down: no new connections, letting open ones finish');
        await client.stop(drainMs);
      });
      try {
        await Promise.race([running, stopping.then(() => running)]);
      } finally {
        shutdownSignal.dispose();
        reload.dispose();
        await control?.close();
        await stopMetrics?.();
      }
      logger.info({}, 'stopped');
    });
}

/**
 * SIGHUP: reads the config file again under the same flags; forwards added
 * start, removed ones stop (their open connections finish), the rest and the
 * session are untouched. Settings that need a new connection are said, not
 * applied. A file that does not parse or validate changes nothing.
 */
async function reloadConnect(client: TunnelClient, given: CommandLine, context: CommandContext, logger: TunnelLogger, why: string, file: string | undefined): Promise<void> {
  let report: ClientReconfigureReport;
  try {
    const next = await resolveConnectSettings(given, context);
    if (next.stdio) throw new UsageError('-W cannot replace forwards in a running connect');
    report = await client.reconfigure({ ...next.client, logger });
  } catch (error) {
    logger.error({ why, file, error: describeFailure(error) }, 'configuration NOT reloaded; the running one stays');
    return;
  }
  if (report.restartNeeded.length > 0) {
    logger.warn({ why, settings: report.restartNeeded }, `changed but not applied: ${report.restartNeeded.join(', ')} (they take a restart of connect)`);
  }
  const failed = report.added.filter((result) => !result.ok).length;
  logger.info(
    { why, file, added: report.added.length - failed, failed, removed: report.removed.length, unchanged: report.unchanged },
    failed > 0 ? 'configuration reloaded; some forwards could not be added (see above)' : 'configuration reloaded',
  );
}

/** What `connect` runs with: flags and config file read, merged and validated. */
export interface ConnectSettings {
  /** The merged values and where each came from. */
  settings: Settings;
  flags: ConnectFlags;
  /** TunnelClient's options, accepted by its validator (resolveClientOptions); the logger is the caller's to add. */
  client: Omit<TunnelClientOptions, 'logger'>;
  /** -W's target: stdin and stdout become one connection to it. */
  stdio: { host: string; port: number } | undefined;
  /** The server as written, and where. */
  server: { text: string; origin: Origin };
  tokenOrigin: Origin;
  /** --proxy or MUXTUN_PROXY as written (credentials redacted), and where. */
  proxy: { text: string; origin: Origin } | undefined;
  logLevel: string;
  logFormat: string | undefined;
  drainMs: number;
  /** Where `--metrics` serves, if given. */
  metrics: MetricsAddress | undefined;
}

/** The config file connect reads when no --config is given (and not --no-config). */
export function defaultConnectConfig(env: NodeJS.ProcessEnv): string {
  return defaultConfigFile('connect.toml', env);
}

/** connect's mutually exclusive options: a flag choosing one drops the file's others (-W beside a file of forwards). */
const CONNECT_ALTERNATIVES: readonly Alternatives[] = [
  [['token'], ['tokenFile']],
  [['fingerprint'], ['ca'], ['insecure']],
  [['stdio'], ['local', 'remote', 'dynamic']],
  [['logLevel'], ['quiet'], ['verbose']],
];

/**
 * Reads the config file (--config, else connect.toml in the config dir if
 * present, unless --no-config) under the flags and the server argument, and
 * validates the result as a start would, the tunnel layer's validator
 * included, without connecting or listening. Errors are usage errors naming
 * the flag, or `FILE:LINE: key` when the value came from the file. Call it
 * again (a reload) to re-read the file.
 */
export async function resolveConnectSettings(given: CommandLine, context: CommandContext): Promise<ConnectSettings> {
  const chosen = given.values.config;
  const fallback = defaultConnectConfig(context.env);
  const file = typeof chosen === 'string' ? chosen : chosen === undefined && existsSync(fallback) ? fallback : undefined;
  const settings = await mergeConfig(given, { file, secretKeys: ['token'], extraKeys: ['server'], alternatives: CONNECT_ALTERNATIVES });
  // The file's values were converted to the shapes commander gives (config-keys.ts).
  const flags = settings.values as unknown as ConnectFlags;
  const name = (flag: string): string => settings.name(flag);
  const env = context.env;

  const target = given.args[0] as string | undefined;
  const fromFile = settings.extra('server');
  const server =
    target !== undefined ? { text: target, origin: { kind: 'flag' } as Origin, label: 'server address' }
    : fromFile !== undefined ? { text: fromFile, origin: settings.origin('server'), label: settings.nameExtra('server', 'server') }
    : { text: env.MUXTUN_SERVER ?? '', origin: { kind: 'env', variable: 'MUXTUN_SERVER' } as Origin, label: 'MUXTUN_SERVER' };
  if (server.text === '') throw new UsageError('connect: give the server as HOST:PORT or set MUXTUN_SERVER (or server = "HOST:PORT" in the config file)');
  const endpoint = serverFrom(server.text, server.label);
  const proxyText = flags.proxy !== undefined ? { text: flags.proxy, origin: settings.origin('proxy'), label: name('--proxy') } : env.MUXTUN_PROXY ? { text: env.MUXTUN_PROXY, origin: { kind: 'env', variable: 'MUXTUN_PROXY' } as Origin, label: 'MUXTUN_PROXY' } : undefined;
  const proxy = proxyText === undefined ? undefined : proxyFrom(proxyText.text, proxyText.label);
  const local: ForwardSpec[] = (flags.local ?? []).map((text) => settings.at('--local', () => parseForwardSpec('-L', text), text));
  const remote: ForwardSpec[] = (flags.remote ?? []).map((text) => settings.at('--remote', () => parseForwardSpec('-R', text), text));
  const dynamic = (flags.dynamic ?? []).map((text) => settings.at('--dynamic', () => parseDynamicSpec(text), text));
  const stdioText = flags.stdio;
  const stdio = stdioText === undefined ? undefined : settings.at('--stdio', () => parseServerAddress(stdioText, `-W ${stdioText}`), stdioText);
  if (stdio && local.length + remote.length + dynamic.length > 0) settings.at('--stdio', () => failUsage('-W combines with neither -L, -R nor -D'));
  if (local.length + remote.length + dynamic.length === 0 && !stdio) throw new UsageError('connect: nothing to forward: give at least one -L, -R, -D or -W (or local, remote, dynamic, stdio in the config file)');
  settings.at('--local', () => rejectDuplicates('-L', local));
  settings.at('--remote', () => rejectDuplicates('-R', remote));
  const allowTarget = (flags.allowTarget ?? []).map((text) => asUsageOf(() => parseTargetPatternOf(name('--allow-target'), text)));
  const drainMs = drainFrom(flags, name);
  const session = sessionFrom(flags, name);
  const backoffCapMs = flags.reconnectMax === undefined ? undefined : parseSeconds(flags.reconnectMax, name('--reconnect-max'));
  const metricsText = flags.metrics;
  const metrics = metricsText === undefined ? undefined : settings.at('--metrics', () => parseMetricsAddress(metricsText, '--metrics'), metricsText);
  const tokenFlag = flags.token !== undefined ? '--token' : '--token-file';
  const token = await settings.at(tokenFlag, () => tokenFrom(flags, env));
  if (token === undefined) throw new UsageError('connect: no token: set MUXTUN_TOKEN (printed by `muxtun serve`), or use --token-file or --token (or token-file in the config file)');
  const tokenOrigin: Origin = flags.token !== undefined ? settings.origin('token') : flags.tokenFile !== undefined ? settings.origin('tokenFile') : { kind: 'env', variable: 'MUXTUN_TOKEN' };
  const trust = await trustFrom(flags, env, settings);

  const client: Omit<TunnelClientOptions, 'logger'> = {
    ...endpoint,
    ...(proxy !== undefined ? { proxy } : {}),
    env,
    ...(flags.wsMode !== undefined ? { wsMode: flags.wsMode } : {}),
    ...(flags.servername ? { servername: flags.servername } : {}),
    token,
    trust,
    local,
    remote,
    dynamic,
    allowTarget,
    ...(flags.proxyProtocol !== undefined ? { proxyProtocol: flags.proxyProtocol } : {}),
    reconnect: flags.reconnect,
    keepGoing: flags.keepGoing === true,
    resume: flags.resume,
    ...(backoffCapMs !== undefined ? { timings: { backoffCapMs: Math.max(backoffCapMs, 1) } } : {}),
    session,
  };
  asUsage(FLAG_NAMES, () => resolveClientOptions(client), name);
  return {
    settings,
    flags,
    client,
    stdio,
    server: { text: redactUrl(server.text), origin: server.origin },
    tokenOrigin,
    proxy: proxyText === undefined ? undefined : { text: redactUrl(proxyText.text), origin: proxyText.origin },
    // -W: stdout carries the forwarded bytes, so only warnings and errors are logged (to stderr) unless asked.
    logLevel: logLevelFrom(flags, stdio !== undefined ? 'warn' : 'info'),
    logFormat: flags.logFormat,
    drainMs,
    metrics,
  };
}

/** What `connect --check` prints beside the settings. */
function connectCheckReport(resolved: ConnectSettings, env: NodeJS.ProcessEnv): CheckReport {
  const { settings, client, flags } = resolved;
  const byDefault = (value: unknown): Shown => ({ value, origin: { kind: 'default' } });
  const trust = client.trust;
  const trustLine =
    trust.kind === 'fingerprint' ? `the certificate with fingerprint ${flags.fingerprint ?? ''}`
    : trust.kind === 'ca' ? `certificates signed by the CAs in ${flags.ca ?? ''}`
    : trust.kind === 'insecure' ? 'anything (--insecure: the server is not verified)'
    : `on first use, recorded in ${trust.knownHosts.description}`;
  const count = (n: number, what: string): string => `${n} ${what}`;
  return {
    header: [`muxtun connect: settings are valid${settings.file ? ` (config file ${settings.file.path})` : ' (no config file)'}`, 'precedence: flag > config file > environment > default; secrets are masked', ''],
    extra: [['server', { value: resolved.server.text, origin: resolved.server.origin }]],
    shown: {
      ...commonDefaults(resolved.drainMs, resolved.logLevel),
      token: { value: client.token, origin: resolved.tokenOrigin },
      ...(resolved.proxy ? { proxy: { value: resolved.proxy.text, origin: resolved.proxy.origin } } : {}),
      'known-hosts': trust.kind === 'tofu' && flags.knownHosts === undefined ? byDefault(trust.knownHosts.description) : undefined,
      'reconnect-max': byDefault(defaultClientTimings.backoffCapMs / 1000),
      'ws-mode': client.url !== undefined ? byDefault(WEBSOCKET_MODES[0]) : undefined,
      control: controlShown(flags, settings, 'connect', env, { stdio: resolved.stdio !== undefined }),
    },
    secrets: ['token'],
    footer: [
      '',
      `trusts: ${trustLine}`,
      `forwards: ${resolved.stdio ? `-W ${flags.stdio ?? ''}` : [count(client.local?.length ?? 0, '-L'), count(client.remote?.length ?? 0, '-R'), count(client.dynamic?.length ?? 0, '-D')].join(', ')}`,
    ],
  };
}

function failUsage(message: string): never {
  throw new UsageError(message);
}

/** HOST:PORT for the TLS port, or a ws:// / wss:// URL for a server behind a reverse proxy. */
function serverFrom(text: string, context: string): { host: string; port: number } | { url: URL } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) return parseServerAddress(text, context);
  if (scheme !== 'ws' && scheme !== 'wss') {
    throw new UsageError(`${context}: ${scheme}:// is not a muxtun server address; give HOST:PORT (its TLS port) or a wss:// (or ws://) URL behind a reverse proxy`);
  }
  try {
    return { url: parseWebSocketUrl(text) };
  } catch (error) {
    throw new UsageError(`${context}: ${(error as Error).message}`);
  }
}

/** --proxy (or MUXTUN_PROXY, named by `source`) as a value; `direct` (or `none`) turns every proxy off, the environment's too. */
function proxyFrom(text: string, source: string): ProxyConfig | 'direct' | undefined {
  if (text === '') return undefined;
  if (text === 'direct' || text === 'none') return 'direct';
  try {
    return parseProxyUrl(text, source);
  } catch (error) {
    throw new UsageError(`${source} ${redactUrl(text)}: ${(error as Error).message}`);
  }
}

/** Two forwards on one local (or one server) port is a typo, not a runtime EADDRINUSE. */
function rejectDuplicates(flag: '-L' | '-R', specs: ForwardSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (spec.bindPort === 0) continue;
    const key = `${spec.bindHost}:${spec.bindPort}`;
    if (seen.has(key)) throw new UsageError(`${flag} ${spec.bindPort} given twice${spec.bindHost === (flag === '-L' ? '127.0.0.1' : '0.0.0.0') ? '' : ` (on ${spec.bindHost})`}: each ${flag} forward needs its own port`);
    seen.add(key);
  }
}

async function trustFrom(flags: ConnectFlags, env: NodeJS.ProcessEnv, settings: Settings): Promise<ClientTrust> {
  const name = (flag: string): string => settings.name(flag);
  const chosen = [flags.fingerprint !== undefined && name('--fingerprint'), flags.ca !== undefined && name('--ca'), flags.insecure && name('--insecure')].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(' and ')}: choose one way to trust the server`);
  if (flags.fingerprint !== undefined) {
    try {
      return { kind: 'fingerprint', fingerprint: parseFingerprint(flags.fingerprint) };
    } catch (error) {
      throw new UsageError(`${name('--fingerprint')}: ${(error as Error).message}`);
    }
  }
  if (flags.ca !== undefined) {
    let caPem: string;
    try {
      caPem = await readFile(flags.ca, 'utf8');
    } catch (error) {
      throw new UsageError(`${name('--ca')} ${flags.ca}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return { kind: 'ca', caPem };
  }
  if (flags.insecure) return { kind: 'insecure' };
  return { kind: 'tofu', knownHosts: knownHostsFile(flags.knownHosts ?? defaultKnownHostsFile(env)) };
}

/** A value the tunnel layer refused (a bad --allow-target pattern) is a usage error. */
function asUsageOf<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw error instanceof UsageError ? error : new UsageError((error as Error).message);
  }
}
