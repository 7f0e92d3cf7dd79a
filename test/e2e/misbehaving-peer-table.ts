/**
 * Writes docs/MISBEHAVING-PEERS.md from the misbehaving-peer case table
 * (misbehaving-peer.cases.ts beside it). `npm run docs:peers`; with `--check` it writes nothing
 * and fails when the committed document differs from the table.
 */
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

import { CASES } from './misbehaving-peer.cases';
import { committedDocument, DOC_PATH, renderDocument } from './misbehaving-peer.docs';

async function main(): Promise<void> {
  const document = await renderDocument(CASES);
  const where = relative(process.cwd(), DOC_PATH);
  if (process.argv.includes('--check')) {
    if (committedDocument() === document) {
      console.log(`${where} is up to date (${CASES.length} cases)`);
    } else {
      console.error(`${where} is out of date: run npm run docs:peers`);
      process.exitCode = 1;
    }
    return;
  }
  writeFileSync(DOC_PATH, document);
  console.log(`wrote ${where} (${CASES.length} cases)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
