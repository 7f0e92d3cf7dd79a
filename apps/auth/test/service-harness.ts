/**
 * AuthService and UserAccountService over the same in-memory repositories, as AuthModule wires
 * them: an operator's change is seen by the next login.
 */
import { AuthService } from '../src/auth.service';
import { type LoginThrottleRepository } from '../src/login-throttle.repository';
import { MemoryLoginThrottleRepository } from '../src/memory-login-throttle.repository';
import { UserAccountService } from '../src/user-account.service';
import { type ConfigOverrides, testConfig, type UserKey } from './auth-fixtures';
import { asHasher, asUsers, fakeHasher, fakeUsers, fixedClock } from './fake-repositories';

export const T0 = Date.UTC(2025, 5, 1, 12);
export const PASSWORD = 'correct horse battery staple';

export interface Harness {
  readonly service: AuthService;
  readonly accounts: UserAccountService;
  readonly users: ReturnType<typeof fakeUsers>;
  readonly hasher: ReturnType<typeof fakeHasher>;
  readonly throttle: MemoryLoginThrottleRepository;
  readonly clock: ReturnType<typeof fixedClock>;
  /** What hasher.hash returned for the dummy password at startup. */
  readonly dummyHash: string;
}

/**
 * Registration on unless overridden, and two accounts every test can use: alice (key `keys.rsa`)
 * and erin (key `keys.ed`), both with PASSWORD. Mocks are cleared once they exist.
 */
export async function serviceHarness(
  keys: { readonly rsa: UserKey; readonly ed: UserKey },
  overrides: ConfigOverrides = {},
  throttleOverride?: LoginThrottleRepository,
): Promise<Harness> {
  const config = testConfig({ allowRegistration: true, ...overrides });
  const users = fakeUsers();
  const hasher = fakeHasher();
  const throttle = new MemoryLoginThrottleRepository(config);
  const clock = fixedClock(T0);
  const service = new AuthService(
    asUsers(users),
    asHasher(hasher),
    throttleOverride ?? throttle,
    clock,
    config,
  );
  const accounts = new UserAccountService(
    asUsers(users),
    asHasher(hasher),
    throttleOverride ?? throttle,
    clock,
  );
  await service.onModuleInit();
  const dummyHash = await (hasher.hash.mock.results[0]?.value as Promise<string>);
  await accounts.createUser({ username: 'alice', password: PASSWORD, publicKey: keys.rsa.spki });
  await accounts.createUser({ username: 'erin', password: PASSWORD, publicKey: keys.ed.spki });
  jest.clearAllMocks();
  return { service, accounts, users, hasher, throttle, clock, dummyHash };
}
