import { TrustConfigurationError } from './client-errors';
import { MemoryKnownServersStore } from './known-servers';
import { resolveServerTrust } from './server-trust';

const ADDRESS = 'chat.example:7777';
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const presented = (fingerprint: string) => ({ fingerprint, spki: Buffer.alloc(0) });

describe('resolveServerTrust', () => {
  it('enforces a pinned key, whatever the policy', async () => {
    const store = new MemoryKnownServersStore({ [ADDRESS]: A });
    const ask = jest.fn(() => true);
    for (const policy of ['tofu', { ask }, { fingerprint: A }] as const) {
      expect(await resolveServerTrust(ADDRESS, { store, policy })).toEqual({
        trust: { fingerprint: A },
      });
    }
    expect(ask).not.toHaveBeenCalled();
  });

  it('refuses to choose between a pin and a different configured fingerprint', async () => {
    const store = new MemoryKnownServersStore({ [ADDRESS]: A });
    const error = await resolveServerTrust(ADDRESS, { store, policy: { fingerprint: B } }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrustConfigurationError);
    expect(error).toMatchObject({ pinnedFingerprint: A, configuredFingerprint: B });
  });

  it('uses a configured fingerprint and pins it only after the login', async () => {
    const store = new MemoryKnownServersStore();
    expect(await resolveServerTrust(ADDRESS, { store, policy: { fingerprint: B } })).toEqual({
      trust: { fingerprint: B },
      pinAfterLogin: B,
    });
    expect(await store.get(ADDRESS)).toBeUndefined();
  });

  it('on first use pins what tofu or the user accepted, and nothing the user refused', async () => {
    const tofuStore = new MemoryKnownServersStore();
    const tofu = await resolveServerTrust(ADDRESS, { store: tofuStore, policy: 'tofu' });
    expect(await tofu.trust.onFirstUse!(presented(A))).toBe(true);
    expect(await tofuStore.get(ADDRESS)).toBe(A);

    const asked: unknown[] = [];
    const answers = [false, true];
    const store = new MemoryKnownServersStore();
    const { trust } = await resolveServerTrust(ADDRESS, {
      store,
      policy: {
        ask: (contact) => {
          asked.push(contact);
          return Promise.resolve(answers.shift()!);
        },
      },
    });
    expect(await trust.onFirstUse!(presented(B))).toBe(false);
    expect(await store.get(ADDRESS)).toBeUndefined();
    expect(await trust.onFirstUse!(presented(B))).toBe(true);
    expect(await store.get(ADDRESS)).toBe(B);
    expect(asked).toEqual([
      { address: ADDRESS, fingerprint: B },
      { address: ADDRESS, fingerprint: B },
    ]);
  });
});
