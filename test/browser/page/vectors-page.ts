/**
 * The page of test/browser/vectors.e2e-spec.ts: the known-answer check of libs/protocol, bundled
 * for the browser, and what the page can tell about where it runs.
 */
import { checkVectors } from '../../../libs/protocol/test/vectors-in-browser';

const scope = globalThis as unknown as Record<string, unknown>;

scope.securechatPage = {
  checkVectors,
  environment: () => ({
    process: typeof scope.process,
    require: typeof scope.require,
    globalBuffer: typeof scope.Buffer,
    window: typeof scope.window,
    document: typeof scope.document,
    isSecureContext: scope.isSecureContext,
    subtle: typeof globalThis.crypto?.subtle,
    userAgent: (scope.navigator as { userAgent?: string } | undefined)?.userAgent,
  }),
};
