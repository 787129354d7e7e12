import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

/**
 * The web console's build (docs/console.md): `src/console/web` -> `dist/console`, served at `/`
 * by the API (src/console/plugin.ts). Everything is bundled (no CDN, system fonts), so the page
 * loads nothing from another host. `npm run build:console`, or `npm install` (prepare) runs it.
 */
const web = fileURLToPath(new URL('./web', import.meta.url));
const out = fileURLToPath(new URL('../../dist/console', import.meta.url));

export default defineConfig({
  root: web,
  base: '/',
  // preact/devtools would be dead weight in production; the preset drops it from builds anyway.
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  publicDir: false,
  logLevel: 'warn',
  build: {
    outDir: out,
    emptyOutDir: true,
    target: 'es2022',
    // Inline nothing: a strict Content-Security-Policy (no data: scripts) serves the build.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
