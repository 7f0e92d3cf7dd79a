import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';

import { type AdminAuditPage } from '@securechat/admin-api';

import { AdminAuditService } from './admin-audit.service';
import { AUDIT_PAGE_SCHEMA, ERROR_RESPONSES } from './admin-openapi';
import { AdminTokenGuard } from './admin-token.guard';
import { auditEntryView } from './admin-views';
import { auditListQuery, parseAdminInput } from './admin.schemas';

/** `/admin/audit`: what was done through this API, newest first. */
@ApiTags('audit')
@ApiBearerAuth()
@ApiResponse(ERROR_RESPONSES.unauthorized)
@UseGuards(AdminTokenGuard)
@Controller('admin/audit')
export class AdminAuditController {
  constructor(private readonly audit: AdminAuditService) {}

  @Get()
  @ApiOperation({ summary: 'The audit log, newest first' })
  @ApiQuery({ name: 'limit', required: false, description: '1-500, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page' })
  @ApiResponse({ status: 200, description: 'A page of entries', schema: AUDIT_PAGE_SCHEMA })
  @ApiResponse(ERROR_RESPONSES.badRequest)
  async list(@Query() query: unknown): Promise<AdminAuditPage> {
    const { limit, cursor } = parseAdminInput(auditListQuery, query);
    const page = await this.audit.list(limit, cursor);
    return { entries: page.entries.map(auditEntryView), next_cursor: page.nextCursor };
  }
}
