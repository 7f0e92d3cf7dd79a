/**
 * The edge mapping from a service refusal to the protocol error the client sees (PROTOCOL.md §2,
 * §10).
 */
import { closesConnection, isErrorCode } from '@securechat/protocol';

import { protocolErrorFor, type ServiceFailure } from './request-errors';

describe('protocolErrorFor', () => {
  it.each<[ServiceFailure, string]>([
    ['not_found', 'not_found'],
    ['forbidden', 'forbidden'],
    ['conflict', 'conflict'],
    ['bad_request', 'bad_request'],
    // An unreachable service is the server's failure: `internal`, and the client may retry.
    ['unavailable', 'internal'],
  ])('maps %s to the protocol code %s', (failure, code) => {
    expect(protocolErrorFor(failure).code).toBe(code);
  });

  it.each<[ServiceFailure, string]>([
    ['not_found', 'no such user or room'],
    ['forbidden', 'not allowed'],
    ['conflict', 'conflicts with an existing message'],
    ['bad_request', 'invalid request'],
    ['unavailable', 'service unavailable; retry later'],
  ])('gives %s the fixed text %j', (failure, message) => {
    expect(protocolErrorFor(failure).message).toBe(message);
  });

  const failures: ServiceFailure[] = [
    'not_found',
    'forbidden',
    'conflict',
    'bad_request',
    'unavailable',
  ];

  it.each(failures)('answers %s with a code of §2 that leaves the session open', (failure) => {
    const { code } = protocolErrorFor(failure);
    expect(isErrorCode(code)).toBe(true);
    expect(closesConnection(code)).toBe(false);
  });

  it('gives every failure its own code and its own text', () => {
    const answers = failures.map(protocolErrorFor);
    expect(new Set(answers.map((a) => a.code)).size).toBe(failures.length);
    expect(new Set(answers.map((a) => a.message)).size).toBe(failures.length);
  });

  it('answers with a code and a message only (nothing else reaches the client)', () => {
    for (const failure of failures) {
      expect(Object.keys(protocolErrorFor(failure)).sort()).toEqual(['code', 'message']);
    }
  });
});
