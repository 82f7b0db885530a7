// The console's static files (assets/), read once when the admin router is
// built and served from memory: a few KiB, no front-end build.

import { readFileSync } from 'node:fs';

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
}

/** URL path under /_lookahead -> asset. */
export type ConsoleAssets = ReadonlyMap<string, ConsoleAsset>;

const files: { path: string; file: string; contentType: string }[] = [
  { path: '/ui', file: 'console.html', contentType: 'text/html; charset=utf-8' },
  { path: '/ui/console.js', file: 'console.js', contentType: 'text/javascript; charset=utf-8' },
  { path: '/ui/console.css', file: 'console.css', contentType: 'text/css; charset=utf-8' },
];

export function loadConsoleAssets(): ConsoleAssets {
  const assets = new Map<string, ConsoleAsset>();
  for (const { path, file, contentType } of files) {
    assets.set(path, { body: readFileSync(new URL(`./assets/${file}`, import.meta.url)), contentType });
  }
  return assets;
}

/**
 * Headers for every console response. The CSP allows only our own script
 * and style files and same-origin fetches: even if a key name slipped into
 * the DOM as markup, no inline script or foreign resource would run or load.
 */
export const consoleSecurityHeaders: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
