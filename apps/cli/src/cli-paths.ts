import { homedir } from 'node:os';
import { join } from 'node:path';

import { nonEmpty } from './cli-config';

/**
 * Where the CLI keeps its files, after the XDG base directory spec: settings, the
 * known_servers pins and the default key in the config directory (like ~/.ssh), transcripts
 * and the joined rooms in the data directory. `SECURECHAT_CONFIG_DIR` / `SECURECHAT_DATA_HOME`
 * override both (tests, several identities on one account).
 */
export interface CliPaths {
  readonly configDir: string;
  readonly configFile: string;
  readonly knownServers: string;
  readonly peerKeys: string;
  readonly defaultKey: string;
  readonly transcripts: string;
  /** The rooms each user joined on each server, listed when chat starts. */
  readonly joinedRooms: string;
}

export function cliPaths(env: NodeJS.ProcessEnv): CliPaths {
  const home = nonEmpty(env.HOME) ?? homedir();
  const configDir =
    nonEmpty(env.SECURECHAT_CONFIG_DIR) ??
    join(nonEmpty(env.XDG_CONFIG_HOME) ?? join(home, '.config'), 'securechat');
  const dataDir =
    nonEmpty(env.SECURECHAT_DATA_HOME) ??
    join(nonEmpty(env.XDG_DATA_HOME) ?? join(home, '.local', 'share'), 'securechat');
  return {
    configDir,
    configFile: join(configDir, 'config.json'),
    knownServers: join(configDir, 'known_servers'),
    peerKeys: join(configDir, 'peer_keys.json'),
    defaultKey: join(configDir, 'id_securechat'),
    transcripts: join(dataDir, 'transcripts'),
    joinedRooms: join(dataDir, 'joined_rooms.json'),
  };
}
