/**
 * What `securechat` exits with. Scripts branch on these, so they never change meaning; the
 * table is printed by `securechat --help`.
 */
export const EXIT = {
  ok: 0,
  /** Anything not covered below (a bug, a full disk). */
  failure: 1,
  /** Bad arguments or configuration: nothing was attempted. */
  usage: 2,
  /** The server could not be reached, or the connection was lost and not re-established. */
  unreachable: 3,
  /** Login or registration refused (`auth_failed`, `forbidden`, `conflict`, `rate_limited`). */
  authFailed: 4,
  /** The server's identity key was refused: changed, untrusted, or failed its proof. */
  serverRefused: 5,
  /** A check failed: a transcript that does not verify, a receipt that disagrees. */
  verificationFailed: 6,
  /** The server refused a request after login (unknown recipient, too large, …). */
  requestRefused: 7,
  /** Interrupted (SIGINT/SIGTERM) before the work was done. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODE_HELP = `Exit codes:
  0    success
  1    unexpected failure
  2    bad arguments or configuration
  3    server unreachable, or the connection was lost
  4    login or registration refused
  5    the server's identity key was refused (changed or not trusted)
  6    verification failed (transcript or receipt mismatch)
  7    the server refused the request (e.g. unknown recipient, too large)
  130  interrupted`;
