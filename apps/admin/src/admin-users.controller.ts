import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';

import {
  type AdminPasswordReset,
  type AdminSessionsClosed,
  type AdminUser,
  type AdminUserDeleted,
  type AdminUserDisabled,
  type AdminUserEnabled,
  type AdminUserKeySet,
  type AdminUserPage,
} from '@securechat/admin-api';

import {
  bodySchema,
  ERROR_RESPONSES,
  PASSWORD_RESET_SCHEMA,
  USER_DELETED_SCHEMA,
  USER_DISABLED_SCHEMA,
  USER_ENABLED_SCHEMA,
  USER_KEY_SET_SCHEMA,
  USER_PAGE_SCHEMA,
  USER_SCHEMA,
} from './admin-openapi';
import { AdminContext, type AdminRequestContext } from './admin-request-context';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminUsersService } from './admin-users.service';
import { userView } from './admin-views';
import {
  createUserBody,
  parseAdminInput,
  passwordBody,
  publicKeyBody,
  userListQuery,
} from './admin.schemas';

const USERNAME = { name: 'username', example: 'alice' };

/**
 * How a change that ends the live sessions (disable, delete, password reset, key change) went
 * for them, as the response says it: the error only with `null`.
 */
function sessionsClosed(username: string, closed: number | null): AdminSessionsClosed {
  return closed === null
    ? {
        sessions_closed: null,
        sessions_close_error: `session control unavailable; close them with DELETE /admin/users/${username}/sessions`,
      }
    : { sessions_closed: closed };
}

const SESSIONS_CLOSED_DOC =
  'sessions_closed: how many live sessions were ordered closed (each gets shutting_down). ' +
  'The change is made and audited even when the gateways cannot be reached: then ' +
  'sessions_closed is null and sessions_close_error says how to close them (DELETE ' +
  '/admin/users/{username}/sessions); gateways also end them at their next recheck of ' +
  "their sessions' accounts (SECURECHAT_SESSION_RECHECK_SECONDS)";

/** `/admin/users`: accounts (see AdminUsersService for what each change also does). */
@ApiTags('users')
@ApiBearerAuth()
@ApiResponse(ERROR_RESPONSES.unauthorized)
@UseGuards(AdminTokenGuard)
@Controller('admin/users')
export class AdminUsersController {
  constructor(private readonly users: AdminUsersService) {}

  @Post()
  @ApiOperation({ summary: 'Create an account (registration rules; open registration or not)' })
  @ApiBody({ schema: bodySchema(createUserBody) })
  @ApiResponse({ status: 201, description: 'Created', schema: USER_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  @ApiResponse({ ...ERROR_RESPONSES.conflict, description: 'user_exists: the name is taken' })
  async create(
    @AdminContext() context: AdminRequestContext,
    @Body() body: unknown,
  ): Promise<AdminUser> {
    const input = parseAdminInput(createUserBody, body);
    const created = await this.users.create(context, {
      username: input.username,
      password: input.password,
      publicKey: input.public_key,
    });
    return userView(created);
  }

  @Get()
  @ApiOperation({ summary: 'List accounts by name, deleted and disabled ones included' })
  @ApiQuery({ name: 'query', required: false, description: 'Part of the name' })
  @ApiQuery({ name: 'limit', required: false, description: '1-500, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page' })
  @ApiResponse({ status: 200, description: 'A page of accounts', schema: USER_PAGE_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  async list(@Query() query: unknown): Promise<AdminUserPage> {
    const options = parseAdminInput(userListQuery, query);
    const page = await this.users.list(options);
    return { users: page.users.map(userView), next_cursor: page.nextCursor };
  }

  @Get(':username')
  @ApiOperation({ summary: 'One account, deleted or not' })
  @ApiParam(USERNAME)
  @ApiResponse({ status: 200, description: 'The account', schema: USER_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async get(@Param('username') username: string): Promise<AdminUser> {
    return userView(await this.users.get(username));
  }

  @Post(':username/disable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Disable an account and end its live sessions at once' })
  @ApiParam(USERNAME)
  @ApiResponse({
    status: 200,
    description: `Disabled. ${SESSIONS_CLOSED_DOC}`,
    schema: USER_DISABLED_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async disable(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
  ): Promise<AdminUserDisabled> {
    const closed = await this.users.disable(context, username);
    return { username, disabled: true, ...sessionsClosed(username, closed) };
  }

  @Post(':username/enable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Enable a disabled account' })
  @ApiParam(USERNAME)
  @ApiResponse({ status: 200, description: 'Enabled', schema: USER_ENABLED_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async enable(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
  ): Promise<AdminUserEnabled> {
    await this.users.enable(context, username);
    return { username, disabled: false };
  }

  @Post(':username/password')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Set a new password (the old one stops working at once) and end the live sessions',
  })
  @ApiParam(USERNAME)
  @ApiBody({ schema: bodySchema(passwordBody) })
  @ApiResponse({
    status: 200,
    description: `Password replaced. ${SESSIONS_CLOSED_DOC}`,
    schema: PASSWORD_RESET_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async resetPassword(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
    @Body() body: unknown,
  ): Promise<AdminPasswordReset> {
    const { password } = parseAdminInput(passwordBody, body);
    const closed = await this.users.resetPassword(context, username, password);
    return { username, password_reset: true, ...sessionsClosed(username, closed) };
  }

  @Put(':username/public-key')
  @ApiOperation({
    summary: 'Replace the public key and end the live sessions; the next login needs the new one',
  })
  @ApiParam(USERNAME)
  @ApiBody({ schema: bodySchema(publicKeyBody) })
  @ApiResponse({
    status: 200,
    description: `The account with its new fingerprint. ${SESSIONS_CLOSED_DOC}`,
    schema: USER_KEY_SET_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async setPublicKey(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
    @Body() body: unknown,
  ): Promise<AdminUserKeySet> {
    const input = parseAdminInput(publicKeyBody, body);
    const change = await this.users.setPublicKey(context, username, input.public_key);
    return { ...userView(change.user), ...sessionsClosed(username, change.sessionsClosed) };
  }

  @Delete(':username')
  @ApiOperation({
    summary: 'Deactivate an account: no more logins, sessions ended; messages and transcripts kept',
  })
  @ApiParam(USERNAME)
  @ApiResponse({
    status: 200,
    description: `Deleted. ${SESSIONS_CLOSED_DOC}`,
    schema: USER_DELETED_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async delete(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
  ): Promise<AdminUserDeleted> {
    const closed = await this.users.delete(context, username);
    return { username, deleted: true, ...sessionsClosed(username, closed) };
  }

  @Delete(':username/throttle')
  @HttpCode(204)
  @ApiOperation({ summary: "Forget the username's failed logins (not the addresses')" })
  @ApiParam(USERNAME)
  @ApiResponse({ status: 204, description: 'Cleared' })
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async clearThrottle(
    @AdminContext() context: AdminRequestContext,
    @Param('username') username: string,
  ): Promise<void> {
    await this.users.clearThrottle(context, username);
  }
}
