import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ScsError } from './errors.ts';
import { Secret } from './secret.ts';

/**
 * Configuration is built once, here, from (highest first) command-line flags, environment
 * variables, an optional JSON file (`--config` / SCS_CONFIG), then defaults; it is validated
 * and frozen, then passed down. This is the only module that reads process.env.
 */
export interface Config {
  readonly dataDir: string;
  /** `sqlite:<file>` or `postgres://...`; a bare path means SQLite. */
  readonly db: string;
  readonly masterKeyFile: string;
  readonly helloHost: string;
  readonly helloPort: number;
  readonly helloMaxConnections: number;
  /** Open hello connections from one source address at most; more are closed on accept. */
  readonly helloMaxConnectionsPerAddress: number;
  /** Connections the kernel may queue on the hello port before the server accepts them. */
  readonly helloBacklog: number;
  readonly helloTimeoutMs: number;
  /** Hello admission (src/hello/rate-limit.ts, docs/security.md "Hello abuse"). */
  readonly helloRateAddressBurst: number;
  readonly helloRateAddressPerMinute: number;
  readonly helloRatePidBurst: number;
  readonly helloRatePidPerMinute: number;
  readonly helloRateMaxTracked: number;
  readonly helloMaxPending: number;
  readonly apiHost: string;
  readonly apiPort: number;
  /** Open REST API connections at most (docs/security.md, "Hello abuse": slow and idle clients). */
  readonly apiMaxConnections: number;
  /** PEM certificate (chain) file for HTTPS on the API; '' = plain HTTP. Set with apiTlsKey. */
  readonly apiTlsCert: string;
  /** PEM private key file for apiTlsCert; '' = plain HTTP. */
  readonly apiTlsKey: string;
  /** `token`: /metrics needs an API token of any role; `none`: open to anyone who reaches the port. */
  readonly apiMetricsAuth: 'token' | 'none';
  readonly logLevel: LogLevel;
  /** Port the server connects back to on a device (TLS-PSK). */
  readonly amtTlsPort: number;
  readonly tlsMinVersion: TlsVersion;
  readonly tlsMaxVersion: TlsVersion;
  readonly tlsCiphers: string;
  readonly connectTimeoutMs: number;
  readonly callTimeoutMs: number;
  readonly maxJobs: number;
  readonly stepRetries: number;
  readonly profile: string;
  /** Env-only secrets (ENV_SECRETS): never flags, which `ps` would show to every user. */
  readonly secrets: EnvSecrets;
}

/** Secrets read only from the environment; absent = not set (a command may then ask on a TTY). */
export interface EnvSecrets {
  /** SCS_BUNDLE_PASSPHRASE: the passphrase of a transfer bundle (psk export/import). */
  readonly bundlePassphrase?: Secret<string>;
  /** SCS_MEBX_PASSWORD: the current MEBx password written into a setup.bin. */
  readonly mebxPassword?: Secret<string>;
  /** SCS_NEW_MEBX_PASSWORD: the new MEBx password written into a setup.bin. */
  readonly newMebxPassword?: Secret<string>;
}

export const ENV_SECRETS: Readonly<Record<keyof EnvSecrets, string>> = {
  bundlePassphrase: 'SCS_BUNDLE_PASSPHRASE',
  mebxPassword: 'SCS_MEBX_PASSWORD',
  newMebxPassword: 'SCS_NEW_MEBX_PASSWORD',
};

function readEnvSecrets(env: Readonly<Record<string, string | undefined>>): EnvSecrets {
  const out: { -readonly [K in keyof EnvSecrets]?: Secret<string> } = {};
  for (const [key, name] of Object.entries(ENV_SECRETS) as [keyof EnvSecrets, string][]) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = new Secret(v);
  }
  return Object.freeze(out);
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2';

type Kind = 'string' | 'port' | 'int' | 'path';

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  /** Default, possibly derived from settings resolved before it. */
  default: (partial: Partial<Record<keyof Config, unknown>>) => string | number;
  oneOf?: readonly string[];
  min?: number;
  max?: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2'] as const;

/** PSK suites from protocol.md §3: AMT 2.x-10.x firmware needs PSK-AES128-CBC-SHA at TLS 1.0. */
export const DEFAULT_PSK_CIPHERS = [
  'PSK-AES128-CBC-SHA',
  'PSK-AES256-CBC-SHA',
  'PSK-AES128-CBC-SHA256',
  'PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
].join(':');

/** Every setting, in resolution order (later defaults may depend on earlier values). */
export const SETTINGS: readonly Setting[] = [
  {
    key: 'dataDir',
    flag: '--data-dir',
    env: 'SCS_DATA_DIR',
    kind: 'path',
    help: 'directory for the database, master key and exports',
    default: () => './data',
  },
  {
    key: 'db',
    flag: '--db',
    env: 'SCS_DB',
    kind: 'string',
    help: 'database: sqlite:<file> or postgres://...',
    default: (c) => `sqlite:${path.join(String(c.dataDir), 'scs.db')}`,
  },
  {
    key: 'masterKeyFile',
    flag: '--master-key-file',
    env: 'SCS_MASTER_KEY_FILE',
    kind: 'path',
    help: 'file holding the 32-byte master key (created with mode 0600 on first start)',
    default: (c) => path.join(String(c.dataDir), 'master.key'),
  },
  {
    key: 'helloHost',
    flag: '--hello-host',
    env: 'SCS_HELLO_HOST',
    kind: 'string',
    help: 'address the hello listener binds',
    default: () => '0.0.0.0',
  },
  {
    key: 'helloPort',
    flag: '--hello-port',
    env: 'SCS_HELLO_PORT',
    kind: 'port',
    help: 'TCP port for device hellos',
    default: () => 9971,
  },
  {
    key: 'helloMaxConnections',
    flag: '--hello-max-connections',
    env: 'SCS_HELLO_MAX_CONNECTIONS',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'open hello connections at most',
    default: () => 20_000,
  },
  {
    // A device opens one connection per hello and its hellos are seconds apart (protocol.md §1d);
    // a few hosts behind one NAT address may overlap. Without this one host holds every slot.
    key: 'helloMaxConnectionsPerAddress',
    flag: '--hello-max-connections-per-address',
    env: 'SCS_HELLO_MAX_CONNECTIONS_PER_ADDRESS',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'open hello connections from one source address at most; more are closed on accept',
    default: () => 8,
  },
  {
    // Node's own default is 511: at 10,000 hellos a minute that is 3 s of a busy (or starved)
    // event loop before SYNs are dropped and devices wait for their next scheduled hello.
    key: 'helloBacklog',
    flag: '--hello-backlog',
    env: 'SCS_HELLO_BACKLOG',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'hello connections the kernel queues until accepted (capped by net.core.somaxconn)',
    default: () => 4096,
  },
  {
    key: 'helloTimeoutMs',
    flag: '--hello-timeout-ms',
    env: 'SCS_HELLO_TIMEOUT_MS',
    kind: 'int',
    min: 100,
    max: 600_000,
    help: 'time a hello connection may take',
    default: () => 5_000,
  },
  {
    key: 'helloRateAddressBurst',
    flag: '--hello-rate-address-burst',
    env: 'SCS_HELLO_RATE_ADDRESS_BURST',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'hellos one source address may send back to back before it is rate-limited',
    default: () => 20,
  },
  {
    key: 'helloRateAddressPerMinute',
    flag: '--hello-rate-address-per-minute',
    env: 'SCS_HELLO_RATE_ADDRESS_PER_MINUTE',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    help: 'hellos per minute one source address may send after its burst',
    default: () => 120,
  },
  {
    key: 'helloRatePidBurst',
    flag: '--hello-rate-pid-burst',
    env: 'SCS_HELLO_RATE_PID_BURST',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'hellos naming one PID accepted back to back before that PID is rate-limited',
    default: () => 10,
  },
  {
    key: 'helloRatePidPerMinute',
    flag: '--hello-rate-pid-per-minute',
    env: 'SCS_HELLO_RATE_PID_PER_MINUTE',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    help: 'hellos per minute naming one PID accepted after its burst',
    default: () => 30,
  },
  {
    key: 'helloRateMaxTracked',
    flag: '--hello-rate-max-tracked',
    env: 'SCS_HELLO_RATE_MAX_TRACKED',
    kind: 'int',
    min: 16,
    max: 10_000_000,
    help: 'source addresses (and PIDs) whose hello rate is remembered at most',
    default: () => 65_536,
  },
  {
    key: 'helloMaxPending',
    flag: '--hello-max-pending',
    env: 'SCS_HELLO_MAX_PENDING',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'hellos being looked up at once at most; more are dropped (the device says hello again)',
    default: () => 4096,
  },
  {
    key: 'apiHost',
    flag: '--api-host',
    env: 'SCS_API_HOST',
    kind: 'string',
    help: 'address the REST API binds',
    default: () => '127.0.0.1',
  },
  {
    key: 'apiPort',
    flag: '--api-port',
    env: 'SCS_API_PORT',
    kind: 'port',
    help: 'TCP port of the REST API',
    default: () => 8080,
  },
  {
    key: 'apiMaxConnections',
    flag: '--api-max-connections',
    env: 'SCS_API_MAX_CONNECTIONS',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    help: 'open REST API connections at most; more are closed on accept',
    default: () => 1024,
  },
  {
    key: 'apiTlsCert',
    flag: '--api-tls-cert',
    env: 'SCS_API_TLS_CERT',
    kind: 'path',
    help: 'PEM certificate file: serve the REST API over HTTPS (with --api-tls-key)',
    default: () => '',
  },
  {
    key: 'apiTlsKey',
    flag: '--api-tls-key',
    env: 'SCS_API_TLS_KEY',
    kind: 'path',
    help: 'PEM private key file of --api-tls-cert',
    default: () => '',
  },
  {
    key: 'apiMetricsAuth',
    flag: '--api-metrics-auth',
    env: 'SCS_API_METRICS_AUTH',
    kind: 'string',
    oneOf: ['token', 'none'],
    help: '/metrics needs an API token (token) or is open (none)',
    default: () => 'token',
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'SCS_LOG_LEVEL',
    kind: 'string',
    oneOf: LOG_LEVELS,
    help: 'log level',
    default: () => 'info',
  },
  {
    key: 'amtTlsPort',
    flag: '--amt-tls-port',
    env: 'SCS_AMT_TLS_PORT',
    kind: 'port',
    help: 'device TLS port to connect back to',
    default: () => 16993,
  },
  {
    key: 'tlsMinVersion',
    flag: '--tls-min-version',
    env: 'SCS_TLS_MIN_VERSION',
    kind: 'string',
    oneOf: TLS_VERSIONS,
    help: 'lowest TLS version offered to devices (TLSv1 for AMT 2.x-10.x)',
    default: () => 'TLSv1',
  },
  {
    key: 'tlsMaxVersion',
    flag: '--tls-max-version',
    env: 'SCS_TLS_MAX_VERSION',
    kind: 'string',
    oneOf: TLS_VERSIONS,
    help: 'highest TLS version offered to devices (PSK is capped at 1.2)',
    default: () => 'TLSv1.2',
  },
  {
    key: 'tlsCiphers',
    flag: '--tls-ciphers',
    env: 'SCS_TLS_CIPHERS',
    kind: 'string',
    help: 'OpenSSL cipher list offered to devices',
    default: () => DEFAULT_PSK_CIPHERS,
  },
  {
    key: 'connectTimeoutMs',
    flag: '--connect-timeout-ms',
    env: 'SCS_CONNECT_TIMEOUT_MS',
    kind: 'int',
    min: 100,
    max: 600_000,
    help: 'TLS connect + handshake timeout per device',
    default: () => 15_000,
  },
  {
    key: 'callTimeoutMs',
    flag: '--call-timeout-ms',
    env: 'SCS_CALL_TIMEOUT_MS',
    kind: 'int',
    min: 100,
    max: 600_000,
    help: 'timeout of one WS-Management call',
    default: () => 30_000,
  },
  {
    key: 'maxJobs',
    flag: '--max-jobs',
    env: 'SCS_MAX_JOBS',
    kind: 'int',
    min: 1,
    max: 100_000,
    help: 'devices configured at once',
    default: () => 256,
  },
  {
    key: 'stepRetries',
    flag: '--step-retries',
    env: 'SCS_STEP_RETRIES',
    kind: 'int',
    min: 0,
    max: 20,
    help: 'retries of a failed step before the job fails',
    default: () => 3,
  },
  {
    key: 'profile',
    flag: '--profile',
    env: 'SCS_PROFILE',
    kind: 'string',
    help: 'provisioning profile used for PSKs without one',
    default: () => 'default',
  },
];

export interface ConfigSources {
  /** Values from command-line flags, keyed by Config key; undefined = not given. */
  flags?: Partial<Record<keyof Config, string | number | undefined>>;
  env?: Readonly<Record<string, string | undefined>>;
  /** Path of a JSON file; otherwise flags.config / SCS_CONFIG. */
  file?: string | undefined;
}

function coerce(setting: Setting, raw: unknown, origin: string): string | number {
  const bad = (why: string): never => {
    throw new ScsError('SCS_CONFIG_INVALID', `${setting.flag} / ${setting.env} (from ${origin}): ${why}`);
  };
  if (setting.kind === 'port' || setting.kind === 'int') {
    const n = typeof raw === 'number' ? raw : /^\s*-?\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) return bad(`expected a whole number, got "${String(raw)}"`);
    const min = setting.kind === 'port' ? 0 : (setting.min ?? 0);
    const max = setting.kind === 'port' ? 65535 : (setting.max ?? Number.MAX_SAFE_INTEGER);
    if (n < min || n > max) return bad(`expected ${min}..${max}, got ${n}`);
    return n;
  }
  if (typeof raw !== 'string' || raw.trim() === '') return bad('expected a non-empty string');
  if (setting.oneOf && !setting.oneOf.includes(raw))
    return bad(`expected one of ${setting.oneOf.join(', ')}, got "${raw}"`);
  return raw;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ScsError('SCS_CONFIG_INVALID', `cannot read config file ${file}`, { cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new ScsError('SCS_CONFIG_INVALID', `config file ${file} is not valid JSON`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ScsError('SCS_CONFIG_INVALID', `config file ${file} must hold a JSON object`);
  }
  const known = new Set<string>(SETTINGS.map((s) => s.key));
  for (const k of Object.keys(parsed)) {
    if (!known.has(k)) throw new ScsError('SCS_CONFIG_INVALID', `config file ${file}: unknown setting "${k}"`);
  }
  return parsed as Record<string, unknown>;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const flags = sources.flags ?? {};
  const env = sources.env ?? process.env;
  const fileName = sources.file ?? env.SCS_CONFIG;
  const file = fileName ? readConfigFile(fileName) : {};
  const out: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) {
    const fromFlag = flags[s.key];
    const fromEnv = env[s.env];
    let value: string | number;
    if (fromFlag !== undefined) value = coerce(s, fromFlag, `flag ${s.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') value = coerce(s, fromEnv, `env ${s.env}`);
    else if (file[s.key] !== undefined) value = coerce(s, file[s.key], `file ${fileName ?? ''}`);
    else value = s.default(out);
    // An empty path means "not set" (optional files such as the API TLS certificate).
    out[s.key] = s.kind === 'path' && value !== '' ? path.resolve(String(value)) : value;
  }
  const config = out as unknown as Config;
  if (TLS_VERSIONS.indexOf(config.tlsMinVersion) > TLS_VERSIONS.indexOf(config.tlsMaxVersion)) {
    throw new ScsError(
      'SCS_CONFIG_INVALID',
      `--tls-min-version ${config.tlsMinVersion} is above --tls-max-version ${config.tlsMaxVersion}`,
    );
  }
  if ((config.apiTlsCert === '') !== (config.apiTlsKey === '')) {
    throw new ScsError('SCS_CONFIG_INVALID', '--api-tls-cert and --api-tls-key go together: give both or neither');
  }
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(config.db)) {
    (out as Record<string, unknown>).db = `sqlite:${path.resolve(config.db)}`;
  }
  (out as Record<string, unknown>).secrets = readEnvSecrets(env);
  return Object.freeze(out) as unknown as Config;
}
