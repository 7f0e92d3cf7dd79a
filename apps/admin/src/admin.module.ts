import { Module } from '@nestjs/common';

import { AuthModule } from '@securechat/auth';
import { TranscriptExportModule } from '@securechat/relay';

import { AdminAuditController } from './admin-audit.controller';
import { AdminAuditRepository } from './admin-audit.repository';
import { AdminAuditService } from './admin-audit.service';
import { AdminOpenApiController, OpenApiDocumentHolder } from './admin-openapi';
import { AdminSessionsController } from './admin-sessions.controller';
import { AdminSessionsService } from './admin-sessions.service';
import { AdminTokenGuard } from './admin-token.guard';
import { AdminTranscriptsController } from './admin-transcripts.controller';
import { AdminTranscriptsService } from './admin-transcripts.service';
import { AdminUsersController } from './admin-users.controller';
import { AdminUsersService } from './admin-users.service';

/**
 * The admin HTTP API under `/admin` (controllers only: the process serves it with
 * admin-http.ts). Imported next to AuthModule by the process that serves it — the embedded
 * one and the distributed auth service — whose global infrastructure must provide, besides
 * what AuthModule needs: `SessionControl` (from @securechat/core), the database's
 * `admin_audit` table (migration 0001), and for transcript export the server identity key
 * at config.identityKeyPath (TranscriptExportModule; the public key alone suffices).
 */
@Module({
  imports: [AuthModule, TranscriptExportModule],
  controllers: [
    AdminUsersController,
    AdminSessionsController,
    AdminTranscriptsController,
    AdminAuditController,
    AdminOpenApiController,
  ],
  providers: [
    AdminTokenGuard,
    AdminUsersService,
    AdminSessionsService,
    AdminTranscriptsService,
    AdminAuditService,
    AdminAuditRepository,
    OpenApiDocumentHolder,
  ],
})
export class AdminModule {}
