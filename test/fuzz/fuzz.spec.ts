/**
 * The fuzz targets as a unit test (`npm test`): the checked-in corpus replayed through every
 * target, then a short fuzz — a fixed number of jsfuzz mutations from a fixed seed, so the run
 * is the same every time — and the inputs of known issues checked to still fail. The long,
 * coverage-guided runs are `npm run fuzz` (docs/FUZZING.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Corpus } from 'jsfuzz/build/src/corpus';

import { target as clientHandshake } from './client-handshake.fuzz';
import { target as frameDecoder } from './frame-decoder.fuzz';
import { type FuzzTarget, KNOWN_ISSUES, tick } from './harness';
import { target as serverHandshake } from './server-handshake.fuzz';
import { target as session } from './session.fuzz';
import { target as transcriptChunk } from './transcript-chunk.fuzz';

const TARGETS: FuzzTarget[] = [
  frameDecoder,
  serverHandshake,
  clientHandshake,
  session,
  transcriptChunk,
];
/** Mutations per target: enough to leave the seeds' paths, few enough for a unit test. */
const MUTATIONS = 200;
const SEED = 0x5ec0de;

function files(dir: string): [string, Buffer][] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => [name, readFileSync(join(dir, name))]);
}

/** mulberry32: a small deterministic PRNG for the mutator. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** jsfuzz's own mutator, drawing from `random` instead of Math.random. */
function seededMutator(inputs: Buffer[], random: () => number): Corpus {
  const corpus = new Corpus([], false);
  const internals = corpus as unknown as { inputs: Buffer[]; seedLength: number };
  internals.inputs = [...inputs];
  internals.seedLength = 0;
  corpus.rand = (n: number) => Math.floor(random() * Math.floor(n));
  corpus.randBool = () => random() >= 0.5;
  return corpus;
}

async function runOne(target: FuzzTarget, data: Buffer, what: string): Promise<void> {
  try {
    await target.run(data);
    await tick();
  } catch (error) {
    throw new Error(
      `${target.name} failed on ${what}; save the input (base64 below) to a file and run ` +
        `npm run fuzz -- --target ${target.name} --repro FILE\n${data.toString('base64')}`,
      { cause: error },
    );
  }
}

describe.each(TARGETS)('fuzz target $name', (target) => {
  const corpus = files(join(__dirname, 'corpus', target.name));

  it('has a seed corpus', () => {
    expect(corpus.length).toBeGreaterThan(0);
  });

  it('replays the checked-in corpus', async () => {
    for (const [name, data] of corpus) await runOne(target, data, `corpus file ${name}`);
  }, 120_000);

  it(`survives ${MUTATIONS} seeded mutations of the corpus`, async () => {
    const random = prng(SEED);
    const inputs = corpus.map(([, data]) => data);
    const mutator = seededMutator(inputs, random);
    for (let i = 0; i < MUTATIONS; i++) {
      const base = inputs[Math.floor(random() * inputs.length)]!;
      await runOne(target, mutator.mutate(base), `mutation ${i}`);
    }
  }, 120_000);
});

describe('known issues', () => {
  const crashes = TARGETS.flatMap((target) =>
    files(join(__dirname, 'crashes', target.name)).map(([name, data]) => ({ target, name, data })),
  );

  beforeAll(() => {
    process.env.FUZZ_STRICT = '1';
  });
  afterAll(() => {
    delete process.env.FUZZ_STRICT;
  });

  it('lists known issues exactly while crash inputs are kept (none once all moved to the corpus)', () => {
    expect(Object.keys(KNOWN_ISSUES).length > 0).toBe(crashes.length > 0);
  });

  // `it.each` refuses an empty table.
  if (crashes.length > 0) {
    it.each(crashes.map((c) => [`${c.target.name}/${c.name}`, c] as const))(
      '%s still fails as a known issue (fixed? remove it from KNOWN_ISSUES, move it to the corpus)',
      async (_label, { target, data }) => {
        await expect(target.run(data)).rejects.toThrow(/^known issue /);
      },
    );
  }
});
