export * from './gateway.module';
export * from './gateway.server';
export * from './service-clients';
export * from './session-registry';
export * from './session-closer';
export * from './session-recheck';
