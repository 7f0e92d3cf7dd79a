/** The chat suite against the embedded server (`npm start`) as a real process. */
import { removeDataDir, startEmbeddedServer } from '../support/embedded-server';
import { defineChatSuite } from './chat-suite';

jest.setTimeout(60_000);

defineChatSuite(async (env) => {
  const server = await startEmbeddedServer(env);
  return {
    port: server.port,
    fingerprint: server.fingerprint,
    output: () => server.output(),
    stop: async () => {
      await server.stop();
      removeDataDir(server);
    },
  };
});
