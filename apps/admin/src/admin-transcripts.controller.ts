import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

import {
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Logger,
  Param,
  Post,
  Query,
  StreamableFile,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';

import { type AdminPurgeResult, type AdminTranscriptPage } from '@securechat/admin-api';

import {
  bodySchema,
  ERROR_RESPONSES,
  TRANSCRIPT_LIST_SCHEMA,
  TRANSCRIPT_PURGE_SCHEMA,
} from './admin-openapi';
import { adminErrorResponse } from './admin-errors';
import { AdminContext, type AdminRequestContext } from './admin-request-context';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminTranscriptsService } from './admin-transcripts.service';
import { transcriptPurgeView, transcriptSessionView } from './admin-views';
import {
  parseAdminInput,
  PURGE_LIMIT_DEFAULT,
  PURGE_LIMIT_MAX,
  sessionIdParams,
  transcriptListQuery,
  transcriptPurgeBody,
} from './admin.schemas';

const NDJSON = 'application/x-ndjson; charset=utf-8';

const PURGE_DOC =
  'Deletes the stored records of sessions that ended (never ended: started) before `before`, ' +
  'oldest first, at most `limit` (1-' +
  `${PURGE_LIMIT_MAX}, default ${PURGE_LIMIT_DEFAULT}) per call: call again while \`more\` is true. ` +
  'Each session row is kept with its chain heads, receipt and countersignature, so a receipt ' +
  'still verifies against them; but the session can no longer be exported (410 ' +
  'transcript_purged), and a session without a receipt (`receipt: false`: incomplete or never ' +
  'ended) keeps nothing signed. `dry_run: true` lists the sessions instead and deletes nothing ' +
  '(pages with `cursor`). A purge is audited (transcript.purge); a dry run is not. The relay ' +
  'also purges on its own, hourly, when SECURECHAT_TRANSCRIPT_RETENTION_DAYS is above 0.';

/**
 * Stored transcripts: a user's sessions, one session's export for offline verification, and
 * the retention purge.
 */
@ApiTags('transcripts')
@ApiBearerAuth()
@ApiResponse(ERROR_RESPONSES.unauthorized)
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class AdminTranscriptsController {
  readonly #logger = new Logger('AdminApi');

  constructor(private readonly transcripts: AdminTranscriptsService) {}

  @Get('users/:username/transcripts')
  @ApiOperation({ summary: "A user's stored sessions, newest first" })
  @ApiParam({ name: 'username' })
  @ApiQuery({ name: 'limit', required: false, description: '1-200, default 50' })
  @ApiQuery({
    name: 'cursor',
    required: false,
    description: 'next_cursor of the previous page (opaque; replaces the former `before`)',
  })
  @ApiResponse({ status: 200, description: 'A page of sessions', schema: TRANSCRIPT_LIST_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  @ApiResponse(ERROR_RESPONSES.userNotFound)
  async list(
    @Param('username') username: string,
    @Query() query: unknown,
  ): Promise<AdminTranscriptPage> {
    const { limit, cursor } = parseAdminInput(transcriptListQuery, query);
    const page = await this.transcripts.list(username, {
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    });
    return { sessions: page.sessions.map(transcriptSessionView), next_cursor: page.nextCursor };
  }

  @Post('transcripts/purge')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Delete old sessions’ records, keeping their receipts',
    description: PURGE_DOC,
  })
  @ApiBody({ schema: bodySchema(transcriptPurgeBody) })
  @ApiResponse({
    status: 200,
    description: 'What this call purged (or, dry run, would purge)',
    schema: TRANSCRIPT_PURGE_SCHEMA,
  })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  async purge(
    @AdminContext() context: AdminRequestContext,
    @Body() body: unknown,
  ): Promise<AdminPurgeResult> {
    const input = parseAdminInput(transcriptPurgeBody, body);
    const outcome = await this.transcripts.purge(context, {
      before: input.before,
      dryRun: input.dry_run,
      limit: input.limit,
      ...(input.cursor === undefined ? {} : { cursor: input.cursor }),
    });
    return transcriptPurgeView(outcome);
  }

  @Get('transcripts/:sessionId')
  @Header('content-type', NDJSON)
  @Header('cache-control', 'no-store')
  @ApiOperation({
    summary: 'One session as transcript-log JSON lines (`securechat verify-transcript` checks it)',
  })
  @ApiParam({ name: 'sessionId' })
  @ApiProduces('application/x-ndjson')
  @ApiResponse({
    status: 200,
    description:
      'header line, record lines, end line; a request the gateway refused before any work is ' +
      'a record line with `digest` (base64 SHA-256 of its plaintext) instead of `plaintext` ' +
      'and `text` (docs/PROTOCOL.md §10 item 25)',
  })
  @ApiResponse({ ...ERROR_RESPONSES.notFound, description: 'transcript_not_found' })
  @ApiResponse({
    ...ERROR_RESPONSES.conflict,
    description: 'transcript_not_exportable: stored in digest mode, no records',
  })
  @ApiResponse({
    ...ERROR_RESPONSES.gone,
    description:
      'transcript_purged: retention deleted the records (the receipt is kept and still ' +
      'verifies against the stored chain heads; the client’s own transcript is the copy left)',
  })
  /**
   * Streamed line by line (a long session does not fit in memory as one string). Refusals
   * come before the first byte and get the usual JSON error; a failure after the 200 has gone
   * out (the database lost) can only abort the connection, so that a cut-off export is never
   * mistaken for a whole one.
   */
  async export(
    @AdminContext() context: AdminRequestContext,
    @Param('sessionId') sessionId: string,
  ): Promise<StreamableFile> {
    const params = parseAdminInput(sessionIdParams, { sessionId });
    const lines = await this.transcripts.export(context, params.sessionId);
    // Logged by name only, as AdminExceptionFilter does: a message might quote stored data.
    const failed = (what: string) => (error: Error) =>
      this.#logger.error(`transcript export of ${params.sessionId} ${what}: ${errorName(error)}`);
    return new StreamableFile(Readable.from(lines), { type: NDJSON })
      .setErrorHandler((error, response) => {
        failed('failed while streaming')(error);
        if (!response.headersSent && response instanceof ServerResponse) {
          // Failed before the first byte left (the store read ahead of the header line).
          const { status, body } = adminErrorResponse(error);
          response.statusCode = status;
          response.setHeader('content-type', 'application/json; charset=utf-8');
          response.end(JSON.stringify(body));
        } else if (response.destroy) {
          response.destroy();
        } else {
          response.end();
        }
      })
      .setErrorLogger(failed('could not be sent'));
  }
}

function errorName(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${error.name} (${code})` : error.name;
}
