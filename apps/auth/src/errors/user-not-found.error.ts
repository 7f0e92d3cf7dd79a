/** setDisabled / deleteUser: no such account, or it has been deleted. */
export class UserNotFoundError extends Error {
  override readonly name = 'UserNotFoundError';
  readonly code = 'user_not_found';

  constructor(readonly username: string) {
    super('no such user');
  }
}
