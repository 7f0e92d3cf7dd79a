/**
 * `npm run bench:crypto-choice`: why libs/protocol's browser implementation is @noble and not
 * WebCrypto for the synchronous path (docs/BENCHMARKS.md). In one headless Chromium page, the
 * primitives of a handshake and of a record, timed on both, runs alternating; medians printed
 * as a markdown table. A script, not a test.
 *
 *   npm run bench:crypto-choice                  3 runs of ~0.5 s per primitive and library
 *   npm run bench:crypto-choice -- --runs 5 --ms 1000
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { buildPage, launchChromium, openPage, servePage } from '../../test/browser/browser-harness';
import { median } from '../stats';
import { type Timing } from './page';

const ROOT = path.resolve(__dirname, '../..');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      ms: { type: 'string', default: '500' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run bench:crypto-choice -- [--runs N] [--ms MS]\n' +
        '  noble vs WebCrypto in headless Chromium, per primitive; medians of N runs of ~MS each\n',
    );
    return;
  }
  const runs = Number(values.runs);
  const ms = Number(values.ms);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(ms) || ms < 50) {
    throw new Error('--runs must be a positive integer and --ms at least 50');
  }
  const pages = await servePage(await buildPage('bench/crypto-choice/page.ts'));
  const browser = await launchChromium();
  const all: Timing[][] = [];
  const chromium = `Chromium ${browser.version()}`;
  try {
    const { page } = await openPage(browser, pages.origin);
    for (let run = 1; run <= runs; run++) {
      process.stderr.write(`run ${run}/${runs}…\n`);
      all.push(
        await page.evaluate(
          (duration) =>
            (
              globalThis as unknown as {
                securechatPage: { run(ms: number): Promise<Timing[]> };
              }
            ).securechatPage.run(duration),
          ms,
        ),
      );
    }
  } finally {
    await browser.close();
    await pages.close();
  }
  const names = [...new Set(all[0]!.map((t) => t.name))];
  const of = (name: string, library: Timing['library']) =>
    median(all.map((r) => r.find((t) => t.name === name && t.library === library)!.opsPerSecond));
  const rows = names.map((name) => {
    const noble = of(name, 'noble');
    const web = of(name, 'webcrypto');
    return { name, noble, web, ratio: noble / web };
  });
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const table = [
    `${chromium}, ${os.cpus().length} cores, medians of ${runs} runs of ~${ms} ms each`,
    '',
    '| primitive | @noble (sync) ops/s | WebCrypto (awaited) ops/s | noble ÷ WebCrypto |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.name} | ${fmt(r.noble)} | ${fmt(r.web)} | ${r.ratio.toFixed(2)} |`),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  const dir = path.join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\..*/, 'Z');
  writeFileSync(
    path.join(dir, `crypto-choice-${stamp}.json`),
    `${JSON.stringify({ chromium, runs, ms, rows, raw: all }, null, 2)}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
