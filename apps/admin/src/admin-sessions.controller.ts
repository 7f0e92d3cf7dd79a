import { Controller, Delete, Get, Param, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';

import {
  type AdminSessionClose,
  type AdminSessionList,
  type AdminUserSessionsClose,
} from '@securechat/admin-api';

import {
  ERROR_RESPONSES,
  SESSION_CLOSE_SCHEMA,
  SESSION_LIST_SCHEMA,
  USER_SESSIONS_CLOSE_SCHEMA,
} from './admin-openapi';
import { AdminContext, type AdminRequestContext } from './admin-request-context';
import { AdminSessionsService } from './admin-sessions.service';
import { AdminTokenGuard } from './admin-token.guard';
import { sessionView } from './admin-views';
import { parseAdminInput, sessionIdParams } from './admin.schemas';

/** Live sessions: `/admin/sessions` and `/admin/users/{username}/sessions`. */
@ApiTags('sessions')
@ApiBearerAuth()
@ApiResponse(ERROR_RESPONSES.unauthorized)
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class AdminSessionsController {
  constructor(private readonly sessions: AdminSessionsService) {}

  @Get('sessions')
  @ApiOperation({ summary: 'Every live session on every gateway, oldest login first' })
  @ApiResponse({ status: 200, description: 'Live sessions', schema: SESSION_LIST_SCHEMA })
  async list(): Promise<AdminSessionList> {
    return { sessions: (await this.sessions.list()).map(sessionView) };
  }

  @Delete('sessions/:sessionId')
  @ApiOperation({ summary: 'End one live session (its gateway closes it at once)' })
  @ApiParam({ name: 'sessionId' })
  @ApiResponse({
    status: 200,
    description:
      'The close order went to every gateway (audited). listed: whether presence knew the ' +
      'session; closed: how many listed sessions it names (0 when not listed: a gateway ' +
      'still holding it closes it all the same)',
    schema: SESSION_CLOSE_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  async close(
    @AdminContext() context: AdminRequestContext,
    @Param('sessionId') sessionId: string,
  ): Promise<AdminSessionClose> {
    const params = parseAdminInput(sessionIdParams, { sessionId });
    return this.sessions.closeSession(context, params.sessionId);
  }

  @Get('users/:username/sessions')
  @ApiOperation({ summary: "A user's live sessions" })
  @ApiParam({ name: 'username' })
  @ApiResponse({ status: 200, description: 'Live sessions', schema: SESSION_LIST_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async listUser(@Param('username') username: string): Promise<AdminSessionList> {
    return { sessions: (await this.sessions.listUser(username)).map(sessionView) };
  }

  @Delete('users/:username/sessions')
  @ApiOperation({ summary: 'End every live session of a user (they may log in again)' })
  @ApiParam({ name: 'username' })
  @ApiResponse({
    status: 200,
    description: 'closed: how many were asked to close',
    schema: USER_SESSIONS_CLOSE_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async closeUser(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
  ): Promise<AdminUserSessionsClose> {
    return { closed: await this.sessions.closeUser(context, username) };
  }
}
