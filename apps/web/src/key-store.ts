/**
 * What the web client keeps in the browser (IndexedDB, one database per origin): the pinned
 * server fingerprint per server address (docs/PROTOCOL.md §4.3, like the CLI's known_servers),
 * the user's key pair per server and username (WebCrypto CryptoKeys, stored as they are: a
 * non-extractable private key stays non-extractable), and the pinned author-key fingerprints per
 * server and username (§7.3, like libs/client's peer-keys.ts).
 */

const DB_NAME = 'securechat-web';
const DB_VERSION = 1;
const SERVERS = 'servers';
const IDENTITIES = 'identities';
const PEERS = 'peers';

export interface StoredIdentity {
  readonly server: string;
  readonly username: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** Where the key came from: made here, or imported from the CLI's key file. */
  readonly origin: 'generated' | 'imported';
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

export class KeyStore {
  private constructor(private readonly db: IDBDatabase) {}

  static open(): Promise<KeyStore> {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const name of [SERVERS, IDENTITIES, PEERS]) {
        if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
      }
    };
    return request(req).then((db) => new KeyStore(db));
  }

  async #get<T>(store: string, key: string): Promise<T | undefined> {
    const tx = this.db.transaction(store, 'readonly');
    return (await request(tx.objectStore(store).get(key))) as T | undefined;
  }

  async #put(store: string, key: string, value: unknown): Promise<void> {
    const tx = this.db.transaction(store, 'readwrite');
    await request(tx.objectStore(store).put(value, key));
  }

  /** The fingerprint pinned for the server at `server` (`host:port`), if any. */
  serverPin(server: string): Promise<string | undefined> {
    return this.#get<string>(SERVERS, server);
  }

  /** Pins on first contact only: a pinned key is never replaced silently (§4.3). */
  async pinServer(server: string, fingerprint: string): Promise<void> {
    const pinned = await this.serverPin(server);
    if (pinned !== undefined && pinned !== fingerprint) {
      throw new Error(`${server} is pinned to ${pinned}; refusing to replace it`);
    }
    await this.#put(SERVERS, server, fingerprint);
  }

  identity(server: string, username: string): Promise<StoredIdentity | undefined> {
    return this.#get<StoredIdentity>(IDENTITIES, `${server}|${username}`);
  }

  saveIdentity(identity: StoredIdentity): Promise<void> {
    return this.#put(IDENTITIES, `${identity.server}|${identity.username}`, identity);
  }

  peerPin(server: string, username: string): Promise<string | undefined> {
    return this.#get<string>(PEERS, `${server}|${username}`);
  }

  pinPeer(server: string, username: string, fingerprint: string): Promise<void> {
    return this.#put(PEERS, `${server}|${username}`, fingerprint);
  }
}
