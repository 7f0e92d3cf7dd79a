import { addressThrottleKey, usernameThrottleKey } from './throttle-keys';

describe('usernameThrottleKey', () => {
  it('keeps valid usernames and hashes anything else to a bounded, distinct key', () => {
    expect(usernameThrottleKey('alice_01')).toBe('alice_01');
    const long = usernameThrottleKey('A'.repeat(100_000));
    expect(long).toMatch(/^invalid:[0-9a-f]{64}$/);
    expect(usernameThrottleKey('Alice')).not.toBe(usernameThrottleKey('alice'));
    expect(usernameThrottleKey('Alice')).toBe(usernameThrottleKey('Alice'));
  });
});

describe('addressThrottleKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::7', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:db8:1::', '2001:db8:1:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
  ])('%s → %s', (address, key) => {
    expect(addressThrottleKey(address)).toBe(key);
  });

  it('hashes what is not an IP address', () => {
    expect(addressThrottleKey('/run/securechat.sock')).toMatch(/^other:[0-9a-f]{64}$/);
  });
});
