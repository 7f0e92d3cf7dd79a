import fc from 'fast-check';

import { closestMatch, editDistance } from './did-you-mean';

const COMMANDS = [
  'keygen',
  'register',
  'chat',
  'send',
  'listen',
  'verify-transcript',
  'fingerprint',
  'admin',
  'trust',
];

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['chat', 'chat', 0],
    ['chta', 'chat', 1], // a swap of neighbours is one edit
    ['lisen', 'listen', 1],
    ['kitten', 'sitting', 3],
  ])('%s → %s is %d', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
  });

  it('is symmetric and zero only for equal strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (a, b) => {
        expect(editDistance(a, b)).toBe(editDistance(b, a));
        expect(editDistance(a, b) === 0).toBe(a === b);
        expect(editDistance(a, b)).toBeLessThanOrEqual(Math.max(a.length, b.length));
      }),
    );
  });
});

describe('closestMatch', () => {
  it.each([
    ['lisen', 'listen'],
    ['regster', 'register'],
    ['chta', 'chat'],
    ['fingerprints', 'fingerprint'],
    ['Send', 'send'],
    ['verify', 'verify-transcript'],
    ['trsut', 'trust'],
  ])('suggests %s → %s', (typed, expected) => {
    expect(closestMatch(typed, COMMANDS)).toBe(expected);
  });

  it.each(['deploy', 'x', 'status', 'ch'])('suggests nothing for %s', (typed) => {
    expect(closestMatch(typed, COMMANDS)).toBeUndefined();
  });
});
