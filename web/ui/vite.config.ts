// The browser app's build. Run from the repository root:
//   node_modules/.bin/vite build --config web/ui/vite.config.ts --outDir DIR --emptyOutDir
// DIR may be relative to the current directory (not to web/ui). The output is index.html plus
// content-hashed files under assets/, which the daemon embeds and serves with long cache headers.
import { resolve, isAbsolute, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));

// Vite resolves a relative --outDir against `root` (web/ui); the build step names it relative to
// the directory it runs in, so take it from there.
function outDirFromCwd(): Plugin {
  return {
    name: 'sluice-outdir-from-cwd',
    config(cfg) {
      const out = cfg.build?.outDir;
      if (out && !isAbsolute(out)) cfg.build!.outDir = resolve(process.cwd(), out);
    },
  };
}

export default defineConfig({
  root: here,
  base: '/',
  publicDir: false,
  plugins: [outDirFromCwd()],
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: resolve(here, '../../build/web-ui-dist'),
    assetsDir: 'assets',
    sourcemap: false,
    target: 'es2022',
    modulePreload: { polyfill: false },
    // Inlined assets would be data: URLs; keep every file a hashed asset instead.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  worker: { format: 'es' },
  server: {
    host: '127.0.0.1',
    proxy: process.env.SLUICE_API
      ? { '/api': { target: process.env.SLUICE_API, changeOrigin: false, ws: false } }
      : undefined,
  },
});
