import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { createToken } from '../../src/api/tokens.ts';
import { loadConfig } from '../../src/config.ts';
import { consolePlugin } from '../../src/console/plugin.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type Server } from '../../src/main.ts';
import type { ApiGrant, ApiRole } from '../../src/store/tokens/tokens.ts';

/**
 * Browser tests of the web console (docs/console.md): the console built from the current
 * sources, a real server (SQLite in a temp dir, hello listener, REST API on a free port) serving
 * it, and Debian's Chromium driven by playwright-core.
 */

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OUTPUT = path.join(ROOT, 'test-output', 'browser');

/** Why the browser tests cannot run here, or undefined when they can. */
export function skipReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; CI installs it)`;
}

/** Builds the console from src/console/web into a temp dir (a stale dist/console must not be what is tested). */
export async function buildConsole(): Promise<string> {
  const outDir = mkdtempSync(path.join(tmpdir(), 'scs-console-build-'));
  await build({
    configFile: path.join(ROOT, 'src', 'console', 'vite.config.ts'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}

export interface ConsoleServer {
  readonly server: Server;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  readonly logs: string[];
  token(name: string, role: ApiRole, grants?: ApiGrant[]): Promise<string>;
  close(): Promise<void>;
}

/** `amt-scs serve` as the tests need it: loopback, free ports, the console from `buildDir`. */
export async function startConsoleServer(buildDir: string, amtTlsPort: number): Promise<ConsoleServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-browser-'));
  const config = loadConfig({
    flags: {
      dataDir: dir,
      helloHost: '127.0.0.1',
      helloPort: 0,
      apiHost: '127.0.0.1',
      apiPort: 0,
      amtTlsPort,
      logLevel: 'info',
      connectTimeoutMs: 5000,
      callTimeoutMs: 10_000,
    },
    env: {},
  });
  const logs: string[] = [];
  const log = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
  const server = await startServer(config, {
    log,
    actor: 'scs:browser-test',
    api: true,
    apiExtensions: [consolePlugin(buildDir)],
    runner: { backoff: { baseMs: 20, maxMs: 200 }, verifyRetries: 6 },
  });
  const api = server.api;
  if (api === undefined) throw new Error('the server started without its API');
  return {
    server,
    url: api.url,
    dir,
    logs,
    async token(name, role, grants = []) {
      const created = await createToken(server.store, { name, role, grants, actor: 'test' });
      return created.token.reveal();
    },
    async close() {
      await server.stop({ graceMs: 0 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  readonly context: BrowserContext;
  /** Every URL any page of the context requested, in order. */
  readonly requests: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Chromium with the flags of design.md and a fresh profile directory, recording every request. */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'scs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    acceptDownloads: true,
    viewport: { width: 1360, height: 900 },
    timeout: 60_000,
  });
  context.setDefaultTimeout(30_000);
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  return {
    context,
    requests,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot a person can look at: test-output/browser/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(OUTPUT, { recursive: true });
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Requests to anything but this machine (data: and blob: URLs never leave the page). */
export function externalRequests(urls: readonly string[]): string[] {
  return urls.filter((u) => {
    const url = new URL(u);
    if (url.protocol === 'data:' || url.protocol === 'blob:') return false;
    return !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  });
}
