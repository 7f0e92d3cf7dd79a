/** Which value of a new account broke a rule (docs/PROTOCOL.md §4.4 "Value rules"). */
export type InvalidUserField = 'username' | 'password' | 'public_key';

/**
 * createUser: a value breaks the rules of docs/PROTOCOL.md §4.4. The message names the field and
 * the rule, never the value (which may be a password).
 */
export class InvalidUserInputError extends Error {
  override readonly name = 'InvalidUserInputError';
  readonly code = 'invalid_user_input';

  constructor(
    readonly field: InvalidUserField,
    /** The rule that was broken, without the value. */
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}
