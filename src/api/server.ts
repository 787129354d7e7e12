import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import { createApi, type Api, type ApiDeps, type ApiOptions } from './app.ts';
import { applyConnectionLimits } from './connection-limits.ts';
import type { ApiConfig } from './context.ts';

export interface StartedApi {
  readonly api: Api;
  /** Base URL, e.g. http://127.0.0.1:8080 (the bound port when apiPort was 0). */
  readonly url: string;
  close(): Promise<void>;
}

export type StartApiDeps = Omit<ApiDeps, 'config'> & {
  readonly config: ApiConfig &
    Pick<Config, 'apiHost' | 'apiPort' | 'apiTlsCert' | 'apiTlsKey'> &
    Partial<Pick<Config, 'apiMaxConnections'>>;
};

/**
 * Builds the API and listens on `config.apiHost:apiPort` (default 127.0.0.1:8080), over HTTPS
 * when `apiTlsCert`/`apiTlsKey` name PEM files. The caller (serve, via src/main.ts) prints the URL.
 */
export async function startApi(deps: StartApiDeps, options: Omit<ApiOptions, 'https'> = {}): Promise<StartedApi> {
  const { config } = deps;
  let https: ApiOptions['https'];
  if (config.apiTlsCert !== '') {
    try {
      https = { cert: await readFile(config.apiTlsCert), key: await readFile(config.apiTlsKey) };
    } catch (cause) {
      throw new ScsError(
        'SCS_FILE_IO',
        `cannot read the API TLS certificate or key (${config.apiTlsCert}, ${config.apiTlsKey})`,
        {
          cause,
        },
      );
    }
  }
  const api = await createApi(deps, https === undefined ? options : { ...options, https });
  applyConnectionLimits(api.server, config.apiMaxConnections);
  try {
    await api.listen({ host: config.apiHost, port: config.apiPort });
  } catch (cause) {
    await api.close();
    throw new ScsError('SCS_LISTEN_FAILED', `the REST API cannot listen on ${config.apiHost}:${config.apiPort}`, {
      cause,
      details: { host: config.apiHost, port: config.apiPort },
    });
  }
  const address = api.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    api,
    url: `${https === undefined ? 'http' : 'https'}://${host}:${address.port}`,
    close: () => api.close(),
  };
}
