/**
 * apps/admin: the operator console (the admin HTTP API under `/admin`), for the processes that
 * serve it: the distributed auth service and the embedded server (see AdminModule).
 */
export * from './admin.module';
export * from './admin-http';
export * from './admin-token-file';
