import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { defaultKnownHostsFile, knownHostsFile } from '../state/index.js';
import { parseFingerprint, type ClientTrust } from '../tls/index.js';
import { defaultClientTimings, parseTargetPatternOf, TunnelClient, type ForwardSpec } from '../tunnel/index.js';
import { parseProxyUrl, parseWebSocketUrl, redactUrl, type ProxyConfig } from '../transport/index.js';
import { addCommonOptions, collect, drainFrom, logLevelFrom, sessionFlagNames, sessionFrom, type CommonFlags } from './common-options.js';
import { parseDynamicSpec, parseForwardSpec, parseServerAddress } from './forward-spec.js';
import { forwardStdio } from './stdio-forward.js';
import { createLogger } from './logger.js';
import { asUsage, type FlagName } from './option-errors.js';
import { onShutdownSignal, type CommandContext } from './process.js';
import { tokenFrom } from './token-source.js';
import { UsageError } from './usage-error.js';
import { parseSeconds } from './values.js';

interface ConnectFlags extends CommonFlags {
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
}

const FLAG_NAMES: Readonly<Record<string, FlagName>> = {
  ...sessionFlagNames,
  'timings.backoffCapMs': { flag: '--reconnect-max', seconds: true },
};

export function connectCommand(context: CommandContext): Command {
  const command = new Command('connect')
    .description('connect to a muxtun server and forward ports through it (-L: here to there, -R: there to here, -D: SOCKS, -W: stdio)')
    .argument('[host:port | wss://host/path]', 'the server: host:port for its TLS port, or a wss:// / ws:// URL behind a reverse proxy (default: $MUXTUN_SERVER)')
    .option('--proxy <url>', 'reach the server through this proxy: http://[user:pass@]host:port (CONNECT), socks5:// or socks5h:// (default: $MUXTUN_PROXY; for wss:// servers also HTTPS_PROXY/NO_PROXY; "direct": none)')
    .option('-L, --local <[bind:]port:host:hostport>', 'listen here on port (bind default 127.0.0.1); the server dials host:hostport (repeatable)', collect)
    .option('-R, --remote <[bind:]port[:host:hostport]>', 'the server listens on port (bind default 0.0.0.0); this side dials host:hostport, or with no target what each SOCKS client asks for (repeatable)', collect)
    .option('-D, --dynamic <[bind:]port>', 'a SOCKS4/4a/5 server here (bind default 127.0.0.1); the server resolves and dials what each client asks for (repeatable)', collect)
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
    .option('--keep-going', 'run with the forwards that work when some cannot be set up at start (default: exit 1, naming the forward)');
  addCommonOptions(command, 'connect');
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
    .action(async (target: string | undefined, flags: ConnectFlags) => {
      // -W: stdout carries the forwarded bytes, so only warnings and errors are logged (to stderr) unless asked.
      const logger = createLogger(logLevelFrom(flags, flags.stdio !== undefined ? 'warn' : 'info'), flags.logFormat);
      const serverText = target ?? context.env.MUXTUN_SERVER;
      if (serverText === undefined || serverText === '') {
        throw new UsageError('connect: give the server as HOST:PORT or set MUXTUN_SERVER');
      }
      const server = serverFrom(serverText, target === undefined ? 'MUXTUN_SERVER' : 'server address');
      const proxy = proxyFrom(flags.proxy, context.env);
      const local: ForwardSpec[] = (flags.local ?? []).map((text) => parseForwardSpec('-L', text));
      const remote: ForwardSpec[] = (flags.remote ?? []).map((text) => parseForwardSpec('-R', text));
      const dynamic = (flags.dynamic ?? []).map((text) => parseDynamicSpec(text));
      const stdio = flags.stdio === undefined ? undefined : parseServerAddress(flags.stdio, `-W ${flags.stdio}`);
      if (stdio && local.length + remote.length + dynamic.length > 0) throw new UsageError('-W combines with neither -L, -R nor -D');
      if (local.length + remote.length + dynamic.length === 0 && !stdio) throw new UsageError('connect: nothing to forward: give at least one -L, -R, -D or -W');
      rejectDuplicates('-L', local);
      rejectDuplicates('-R', remote);
      const allowTarget = (flags.allowTarget ?? []).map((text) => asUsageOf(() => parseTargetPatternOf('--allow-target', text)));
      const drainMs = drainFrom(flags);
      const session = sessionFrom(flags);
      const backoffCapMs = flags.reconnectMax === undefined ? undefined : parseSeconds(flags.reconnectMax, '--reconnect-max');
      const token = await tokenFrom(flags, context.env);
      if (token === undefined) throw new UsageError('connect: no token: set MUXTUN_TOKEN (printed by `muxtun serve`), or use --token-file or --token');
      const trust = await trustFrom(flags, context.env);

      const client = asUsage(
        FLAG_NAMES,
        () =>
          new TunnelClient({
            ...server,
            ...(proxy !== undefined ? { proxy } : {}),
            env: context.env,
            ...(flags.servername ? { servername: flags.servername } : {}),
            token,
            trust,
            local,
            remote,
            dynamic,
            allowTarget,
            reconnect: flags.reconnect,
            keepGoing: flags.keepGoing === true,
            resume: flags.resume,
            ...(backoffCapMs !== undefined ? { timings: { backoffCapMs: Math.max(backoffCapMs, 1) } } : {}),
            session,
            logger,
          }),
      );
      if (remote.some((spec) => spec.dynamic === true) && allowTarget.length === 0) {
        logger.warn({}, 'reverse dynamic -R without --allow-target: whoever reaches the server\'s port can reach anything this side can reach');
      }
      if (trust.kind === 'insecure') logger.warn({}, '--insecure: the server is not verified; anyone in the network path can pose as it');
      const shutdownSignal = onShutdownSignal(context.stderr);
      const running = client.run();
      if (stdio) {
        // Done when both directions ended (exit 0), or the dial failed (exit 1, its reason on stderr).
        const carried = forwardStdio(client, stdio.host, stdio.port, context.stdin ?? process.stdin, context.stdout);
        try {
          await Promise.race([carried, running.then(() => carried)]);
        } finally {
          shutdownSignal.dispose();
          await client.stop(0);
        }
        return;
      }
      const stopping = shutdownSignal.received.then(async (signal) => {
        logger.info({ signal, drainMs }, 'shutting down: no new connections, letting open ones finish');
        await client.stop(drainMs);
      });
      try {
        await Promise.race([running, stopping.then(() => running)]);
      } finally {
        shutdownSignal.dispose();
      }
      logger.info({}, 'stopped');
    });
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

/** --proxy, else MUXTUN_PROXY, as a value; `direct` (or `none`) turns every proxy off, the environment's too. */
function proxyFrom(flag: string | undefined, env: NodeJS.ProcessEnv): ProxyConfig | 'direct' | undefined {
  const [text, source] = flag !== undefined ? [flag, '--proxy'] : [env.MUXTUN_PROXY, 'MUXTUN_PROXY'];
  if (text === undefined || text === '') return undefined;
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

async function trustFrom(flags: ConnectFlags, env: NodeJS.ProcessEnv): Promise<ClientTrust> {
  const chosen = [flags.fingerprint !== undefined && '--fingerprint', flags.ca !== undefined && '--ca', flags.insecure && '--insecure'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(' and ')}: choose one way to trust the server`);
  if (flags.fingerprint !== undefined) {
    try {
      return { kind: 'fingerprint', fingerprint: parseFingerprint(flags.fingerprint) };
    } catch (error) {
      throw new UsageError(`--fingerprint: ${(error as Error).message}`);
    }
  }
  if (flags.ca !== undefined) {
    let caPem: string;
    try {
      caPem = await readFile(flags.ca, 'utf8');
    } catch (error) {
      throw new UsageError(`--ca ${flags.ca}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
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
