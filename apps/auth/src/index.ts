/** The auth service's public surface, for the processes that wire it (see AuthModule). */
export * from './auth.module';
export * from './auth.service';
export * from './user-account.service';
export * from './login-throttle.repository';
export * from './memory-login-throttle.repository';
export * from './errors/invalid-user-input.error';
export * from './errors/user-exists.error';
export * from './errors/user-not-found.error';
export * from './redis-login-throttle.repository';
