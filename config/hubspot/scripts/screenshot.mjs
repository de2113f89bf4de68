#!/usr/bin/env node
// Makes docs/hubspot-card.png: the BANT qualification card rendered with the test fixtures.
//   cd config/hubspot/src/app/cards && npm ci && npm run screenshot
// 1. esbuild bundles render-card.jsx (card + fixtures + @hubspot/ui-extensions/testing) for Node;
// 2. the bundle renders the card with createRenderer and writes a static HTML page (card-html.js);
// 3. headless Chromium screenshots the page. Needs `chromium` on PATH (Debian: apt-get install -y chromium),
//    or CHROMIUM=/path/to/chrome.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cards = resolve(here, '..', 'src', 'app', 'cards');
const repo = resolve(here, '..', '..', '..');
const outDir = join(here, 'out');
const png = process.argv[2] ? resolve(process.argv[2]) : join(repo, 'docs', 'hubspot-card.png');
const width = 1240;
const height = 490;

const require = createRequire(join(cards, 'package.json'));
const esbuild = require('esbuild');

mkdirSync(outDir, { recursive: true });
const bundle = join(outDir, 'render-card.mjs');
await esbuild.build({
  entryPoints: [join(here, 'render-card.jsx')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'esm',
  jsx: 'automatic',
  nodePaths: [join(cards, 'node_modules')],
  // CommonJS packages in an ES module bundle need a require().
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

const html = join(outDir, 'hubspot-card.html');
execFileSync(process.execPath, [bundle, html], { stdio: 'inherit' });

const chromium = process.env.CHROMIUM || 'chromium';
execFileSync(
  chromium,
  [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--hide-scrollbars',
    '--force-device-scale-factor=1',
    `--window-size=${width},${height}`,
    `--screenshot=${png}`,
    pathToFileURL(html).href,
  ],
  { stdio: ['ignore', 'inherit', 'pipe'] },
);
console.log(`wrote ${png} (${statSync(png).size} bytes)`);
