import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

import { ADMIN_ACTOR, type AdminRequest } from './admin-token.guard';

/** Who made an admin request and from where: what the audit log records besides the action. */
export interface AdminRequestContext {
  /** From AdminTokenGuard: `token:` + a hash prefix, never the token. */
  readonly actor: string;
  /**
   * The peer address of the HTTP connection. X-Forwarded-For is ignored on purpose: the API
   * listens on loopback by default, and a header anyone can set is no evidence.
   */
  readonly sourceAddress: string | null;
}

/** Handler parameter decorator: the AdminRequestContext of the current request. */
export const AdminContext = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AdminRequestContext => {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    return {
      actor: request[ADMIN_ACTOR] ?? 'unknown',
      sourceAddress: request.socket.remoteAddress ?? null,
    };
  },
);
