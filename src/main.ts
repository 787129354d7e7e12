import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { runnerEventSource } from './api/events.ts';
import type { ApiOptions } from './api/app.ts';
import { startApi, type StartedApi } from './api/server.ts';
import type { Config } from './config.ts';
import { createCaMaterial, loadCa, type Ca } from './crypto/ca.ts';
import { createHelloListener, type HelloListener } from './hello/listener.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createDeviceCertificateIssuer, type DeviceCertificateIssuer } from './provisioning/device-certificate.ts';
import { createHelloAdmission, type HelloAdmission } from './provisioning/hello-admission.ts';
import { createRunner, type Runner, type RunnerOptions } from './provisioning/runner.ts';
import { PkiProvisioner } from './pki/provisioner.ts';
import { openStore } from './store/open.ts';
import type { Store } from './store/store.ts';

/**
 * The composition root `serve` uses (design.md): config -> store (master key created on the
 * first start) -> the SCS CA (created and stored sealed on the first start) -> runner -> hello
 * listener; then unfinished jobs are resumed. Everything is injected; nothing here reads
 * process.env.
 */

export interface ServerOptions {
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Who the audit log names; default `scs:<hostname>`. */
  readonly actor?: string;
  /** Runner tuning (tests shorten back-off and verification). */
  readonly runner?: Pick<RunnerOptions, 'backoff' | 'verifyRetries' | 'nodeId' | 'lease'>;
  /** Also serve the REST API on config.apiHost:apiPort (serve does; tests that need no API leave it off). */
  readonly api?: boolean;
  /** Plugins the API registers after its routes, e.g. the web console at `/` (serve adds it when built). */
  readonly apiExtensions?: ApiOptions['extensions'];
}

export interface Server {
  readonly config: Config;
  readonly store: Store;
  readonly ca: Ca;
  readonly runner: Runner;
  /** Certificate-based setup: version 3 hellos go here (docs/pki.md). */
  readonly pki: PkiProvisioner;
  readonly listener: HelloListener;
  readonly metrics: Metrics;
  /** Where the hello listener is bound (port 0 in the config: the port picked). */
  readonly helloAddress: AddressInfo;
  /** The REST API, when `options.api` asked for it. */
  readonly api: StartedApi | undefined;
  readonly masterKey: { readonly file: string; readonly created: boolean };
  readonly caCreated: boolean;
  /** Unfinished jobs picked up at start. */
  readonly resumed: number;
  /**
   * Stops accepting hellos, lets running jobs finish for `graceMs` (default 5 s) and leaves the
   * rest resumable, then closes the store. Safe to call twice.
   */
  stop(options?: { readonly graceMs?: number }): Promise<void>;
}

/** The CA the store holds, or a new one stored (sealed) on the very first start. */
export async function ensureCa(
  store: Store,
  actor: string,
): Promise<{ readonly ca: Ca; readonly issuer: DeviceCertificateIssuer; readonly created: boolean }> {
  const existing = await store.ca.get();
  const { material, created } =
    existing === undefined
      ? await store.ca.create(await createCaMaterial(), { actor })
      : { material: existing, created: false };
  return { ca: await loadCa(material), issuer: createDeviceCertificateIssuer(material), created };
}

export async function startServer(config: Config, options: ServerOptions): Promise<Server> {
  const { log } = options;
  const actor = options.actor ?? `scs:${hostname()}`;
  const metrics = options.metrics ?? createMetrics();
  const { store, masterKey } = await openStore(config, log);
  let listener: HelloListener | undefined;
  let admission: HelloAdmission | undefined;
  let runner: Runner | undefined;
  let api: StartedApi | undefined;
  try {
    const { ca, issuer, created: caCreated } = await ensureCa(store, actor);
    runner = createRunner({ store, ca, issuer, config, log, metrics, actor, ...options.runner });
    const r = runner;
    const pki = new PkiProvisioner({ store, ca, issuer, config, log, actor });
    const admitter = createHelloAdmission({
      config,
      store,
      metrics,
      log,
      actor,
      accept: (hello, remoteAddress) =>
        hello.version === 3 ? pki.accept(hello, remoteAddress) : r.accept(hello, remoteAddress),
    });
    admission = admitter;
    listener = createHelloListener({
      host: config.helloHost,
      port: config.helloPort,
      maxConnections: config.helloMaxConnections,
      maxConnectionsPerAddress: config.helloMaxConnectionsPerAddress,
      backlog: config.helloBacklog,
      timeoutMs: config.helloTimeoutMs,
      log,
      onHello: (hello, remoteAddress) => admitter.onHello(hello, remoteAddress),
      onMalformed: (malformed, remoteAddress) => admitter.onMalformed(malformed, remoteAddress),
      onRefused: (refusal) => admitter.onRefused(refusal),
    });
    const helloAddress = await listener.listen();
    if (options.api === true) {
      api = await startApi(
        {
          config,
          store,
          log,
          metrics: metrics.registry,
          provisioningEvents: runnerEventSource(runner),
        },
        options.apiExtensions === undefined ? {} : { extensions: options.apiExtensions },
      );
    }
    const a = api;
    const resumed = await runner.resume();
    let stopping: Promise<void> | undefined;
    const l = listener;
    return {
      config,
      store,
      ca,
      runner,
      pki,
      listener,
      metrics,
      helloAddress,
      api,
      masterKey,
      caCreated,
      resumed,
      stop(stopOptions = {}) {
        stopping ??= (async () => {
          await a?.close();
          await l.close();
          await admitter.close();
          await pki.stop();
          await r.stop(stopOptions);
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await api?.close();
    await listener?.close();
    await admission?.close();
    await runner?.stop({ graceMs: 0 });
    await store.close();
    throw error;
  }
}
