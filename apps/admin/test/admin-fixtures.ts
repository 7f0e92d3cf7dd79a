/** Shared test material for apps/admin. */
import { loadConfig, type SecureChatConfig } from '@securechat/core';

/** The defaults of libs/core, ignoring this process's environment. */
export function testConfig(): SecureChatConfig {
  return loadConfig({});
}
