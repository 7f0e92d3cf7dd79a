import { Injectable } from '@nestjs/common';

import { type PresenceEntry, PresenceRepository } from './presence.repository';
import { SessionCommandPort } from './session-command.port';
import { SessionControl } from './session-control';

/**
 * SessionControl over presence (who is where) and the command channel to the gateways.
 *
 * The command is broadcast even when presence knows no matching session: presence is
 * informational (an entry may be missing for a moment after a Redis hiccup), and an order
 * that finds nothing costs each gateway one map lookup. The count is presence's, so that an
 * operator can tell "nothing to close" from "asked to close".
 */
@Injectable()
export class SessionControlService extends SessionControl {
  constructor(
    private readonly presence: PresenceRepository,
    private readonly commands: SessionCommandPort,
  ) {
    super();
  }

  override list(): Promise<PresenceEntry[]> {
    return this.presence.list();
  }

  override listUser(username: string): Promise<PresenceEntry[]> {
    return this.presence.listUser(username);
  }

  override async closeSession(sessionId: string, reason: string): Promise<number> {
    // Presence is indexed by user; a full listing is the price of closing by id alone.
    const known = (await this.presence.list()).filter((e) => e.sessionId === sessionId);
    await this.commands.publish({ kind: 'close-session', sessionId, reason });
    return known.length;
  }

  override async closeUser(username: string, reason: string): Promise<number> {
    const known = await this.presence.listUser(username);
    await this.commands.publish({ kind: 'close-user', username, reason });
    return known.length;
  }
}
