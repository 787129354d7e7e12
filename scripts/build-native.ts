/**
 * `npm install` runs this (package.json "install"): builds the native batch AES-GCM
 * (native/aead.c, binding.gyp) with node-gyp against this Node's headers. It never fails the
 * install: without a C compiler or Node's headers the server seals with node:crypto alone, the
 * same bytes, ~14x slower per secret in bulk work (docs/psk-database.md, "Encryption").
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

// npm names its own node-gyp in lifecycle scripts; run by hand, look beside npm.
const gyp =
  process.env.npm_config_node_gyp ??
  path.join(
    path.dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
const root = path.join(import.meta.dirname, '..');
// Headers installed beside node (official tarballs, Debian's nodejs): no download needed, which
// matters offline. npm passes its own `nodedir` setting in the environment when it runs this.
const prefix = path.join(path.dirname(process.execPath), '..');
const nodedir =
  process.env.npm_config_nodedir === undefined && existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))
    ? [`--nodedir=${prefix}`]
    : [];

if (!existsSync(gyp)) {
  console.warn(`amt-scs: native AES-GCM not built: node-gyp not found (${gyp}); sealing uses node:crypto`);
} else {
  const r = spawnSync(process.execPath, [gyp, 'rebuild', '--release', ...nodedir], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) {
    console.log('amt-scs: native AES-GCM built (build/Release/aead.node)');
  } else {
    const why = `${r.stderr}${r.stdout}`.trim().split('\n').slice(-8).join('\n');
    console.warn(
      `amt-scs: native AES-GCM not built; sealing uses node:crypto (slower in bulk). node-gyp said:\n${why}`,
    );
  }
}
