/**
 * createUser, UserRepository.create: the name is taken, by an active, disabled or deleted
 * account (names are never reused).
 */
export class UserExistsError extends Error {
  override readonly name = 'UserExistsError';
  readonly code = 'user_exists';

  constructor(readonly username: string) {
    super('a user with this name already exists');
  }
}
