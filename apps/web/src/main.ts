/**
 * The web client's entry (apps/web, built by `npm run build:web` into dist/web and served by the
 * gateway next to its WebSocket): first contact and pinning of the server, the user's key and
 * login, then the chat. The logic lives in the other modules; this wires it to the page.
 */
import { ServerIdentityError } from '@securechat/protocol';
import { z } from 'zod';

import { ChatState } from './chat-state';
import { Inbox } from './inbox';
import { importKeyFile } from './key-file-import';
import { KeyStore } from './key-store';
import { PeerVerifier } from './peer-verifier';
import { safeFileName } from './reconnect-policy';
import { defaultSocketUrl, probeServer, serverAddress } from './server-probe';
import { type SessionTranscript } from './session-transcript';
import { downloadTranscript } from './transcript-download';
import { renderChat } from './ui/chat-view';
import { byId, showScreen } from './ui/dom';
import { generateUserKeyPair, userKeyOf } from './user-keys';
import { asUserKey, type ConnectionStatus, describeError, WebConnection } from './web-connection';

// zod would otherwise probe `new Function` (eval) once, which the page's CSP reports.
z.config({ jitless: true });

const url = defaultSocketUrl(location);
const server = serverAddress(url);

function setStatus(status: ConnectionStatus | { state: 'starting' | 'offline'; reason?: string }) {
  const line = byId('status');
  line.dataset.state = status.state;
  switch (status.state) {
    case 'connected':
      line.textContent = 'connected';
      break;
    case 'connecting':
      line.textContent = 'connecting…';
      break;
    case 'reconnecting':
      line.textContent = `reconnecting in ${status.inSeconds} s`;
      line.title = status.reason;
      break;
    case 'offline':
      line.textContent = status.reason ? `offline — ${status.reason}` : 'offline';
      break;
    case 'starting':
      line.textContent = 'starting…';
      break;
  }
}

function showRefused(expected: string, presented: string): void {
  byId('refused-server').textContent = server;
  byId('refused-expected').textContent = expected;
  byId('refused-presented').textContent = presented;
  setStatus({ state: 'offline', reason: 'server refused' });
  showScreen('refused-screen');
}

async function main(): Promise<void> {
  const store = await KeyStore.open();
  setStatus({ state: 'connecting' });
  let presented: string;
  try {
    presented = await probeServer(url);
  } catch (error) {
    byId('probe-text').textContent = `Cannot check the server: ${describeError(error)}`;
    setStatus({ state: 'offline', reason: 'server unreachable' });
    return;
  }
  const pinned = await store.serverPin(server);
  if (pinned !== undefined && pinned !== presented) {
    showRefused(pinned, presented);
    return;
  }
  if (pinned === undefined) {
    byId('trust-server').textContent = server;
    byId('trust-fingerprint').textContent = presented;
    setStatus({ state: 'offline', reason: 'server not trusted yet' });
    showScreen('trust-screen');
    const accepted = await new Promise<boolean>((resolve) => {
      byId('trust-accept').addEventListener('click', () => resolve(true), { once: true });
      byId('trust-refuse').addEventListener('click', () => resolve(false), { once: true });
    });
    if (!accepted) {
      byId('probe-text').textContent = 'You refused the server. Nothing was sent to it.';
      showScreen('probe-screen');
      return;
    }
    await store.pinServer(server, presented);
  }
  showLogin(store, presented);
}

function showLogin(store: KeyStore, fingerprint: string): void {
  byId('login-server').textContent = server;
  byId('login-fingerprint').textContent = fingerprint;
  setStatus({ state: 'offline', reason: 'not logged in' });
  showScreen('login-screen');
  const error = byId('login-error');
  const username = byId<HTMLInputElement>('username');
  const password = byId<HTMLInputElement>('password');
  let busy = false;

  const run = async (what: () => Promise<void>) => {
    if (busy) return;
    if (!username.reportValidity() || !password.reportValidity()) return;
    busy = true;
    error.textContent = '';
    try {
      await what();
    } catch (failure) {
      if (failure instanceof ServerIdentityError && failure.reason === 'server_key_mismatch') {
        showRefused(failure.expectedFingerprint ?? fingerprint, failure.presentedFingerprint);
      } else {
        error.textContent = describeError(failure);
      }
    } finally {
      busy = false;
    }
  };

  const start = async (
    action: 'login' | 'register',
    pair: { privateKey: CryptoKey; publicKey: CryptoKey },
    save?: 'generated' | 'imported',
  ) => {
    const name = username.value.trim();
    const chat = new ChatClient(store, name, pair.publicKey);
    const connection = new WebConnection({
      url,
      server,
      fingerprint,
      credentials: {
        action,
        username: name,
        password: password.value,
        privateKey: asUserKey(await userKeyOf(pair)),
      },
      onDeliver: (deliver) => chat.onDeliver(deliver),
      onStatus: setStatus,
      onSession: (transcript) => chat.onSession(transcript),
    });
    // Deliveries may come as soon as the login completes: their checks need the connection.
    chat.use(connection);
    await connection.start().catch((failure: unknown) => {
      throw (failure as { cause?: unknown }).cause ?? failure;
    });
    if (save) await store.saveIdentity({ server, username: name, ...pair, origin: save });
    password.value = '';
    chat.attach(connection);
  };

  byId('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void run(async () => {
      const identity = await store.identity(server, username.value.trim());
      if (identity === undefined) {
        throw new Error(
          `No key for ${username.value.trim()} on this server in this browser: register, ` +
            'or import your CLI key file.',
        );
      }
      await start('login', identity);
    });
  });
  byId('register').addEventListener('click', () => {
    void run(async () => start('register', await generateUserKeyPair(), 'generated'));
  });
  byId('import-key').addEventListener('click', () => {
    void run(async () => {
      const file = byId<HTMLInputElement>('key-file').files?.[0];
      if (file === undefined) throw new Error('Choose your key file first.');
      const passphrase = byId<HTMLInputElement>('key-passphrase').value;
      const pair = await importKeyFile(await file.text(), passphrase);
      await start('login', pair, 'imported');
    });
  });
}

/** The chat screen of one logged-in user. */
class ChatClient {
  readonly state: ChatState;
  readonly #inbox: Inbox;
  #connection: WebConnection | undefined;
  readonly #transcripts: SessionTranscript[] = [];

  constructor(
    private readonly store: KeyStore,
    username: string,
    publicKey: CryptoKey,
  ) {
    this.state = new ChatState(username);
    const verifier = new PeerVerifier(
      {
        get: (user) => store.peerPin(server, user),
        pin: (user, fp) => store.pinPeer(server, user, fp),
      },
      (user) => this.#connected().getKey(user),
      {
        username,
        spki: async () => new Uint8Array(await crypto.subtle.exportKey('spki', publicKey)),
      },
    );
    this.#inbox = new Inbox(this.state, verifier, (deliver, reason) =>
      console.warn(`dropped message ${deliver.msg_id}: ${reason}`),
    );
    this.state.onChange(() => renderChat(this.state, (name) => void this.open(name)));
  }

  /** The connection the checks use, set before it logs in. */
  use(connection: WebConnection): void {
    this.#connection = connection;
  }

  #connected(): WebConnection {
    if (this.#connection === undefined) throw new Error('not connected');
    return this.#connection;
  }

  onSession(transcript: SessionTranscript): void {
    this.#transcripts.push(transcript);
    this.#inbox.onSession();
  }

  /** A live delivery: shown at once, verified in the background (the check needs `get_key`). */
  onDeliver(deliver: Parameters<ChatState['addDelivered']>[0]): void {
    this.#inbox.onDeliver(deliver);
  }

  attach(connection: WebConnection): void {
    this.#connection = connection;
    byId('who').textContent = connection.username;
    showScreen('chat-screen');
    renderChat(this.state, (name) => void this.open(name));
    const input = byId<HTMLInputElement>('message-input');
    const error = byId('chat-error');

    byId('open-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const field = byId<HTMLInputElement>('open-name');
      const name = field.value.trim();
      if (name === '') return;
      field.value = '';
      void this.open(name).catch((failure: unknown) => {
        error.textContent = describeError(failure);
      });
    });
    byId('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      const to = this.state.active;
      const body = input.value;
      if (to === undefined || body === '') return;
      input.value = '';
      const id = connection.newId();
      const message = this.state.addOwn(to, body, id);
      connection.send(to, body, id).then(
        (ack) => this.state.acknowledged(to, message, ack.msg_id, ack.server_ts),
        (failure: unknown) => this.state.setMark(message, 'refused', describeError(failure)),
      );
    });
    byId('close-session').addEventListener('click', () => {
      const button = byId<HTMLButtonElement>('close-session');
      if (button.disabled) return;
      button.disabled = true;
      const result = byId('receipt-result');
      result.textContent = 'closing…';
      connection.close().then(
        (check) => {
          const agreed = check.viewsMatch && check.signatureValid;
          result.dataset.agreed = String(agreed);
          result.textContent =
            `Receipt: ${agreed ? 'agreed' : 'DISPUTED'} — views ` +
            `${check.viewsMatch ? 'match' : 'differ'}, server signature ` +
            `${check.signatureValid ? 'valid' : 'INVALID'}`;
          input.disabled = true;
          byId<HTMLButtonElement>('send').disabled = true;
        },
        (failure: unknown) => {
          result.textContent = `No receipt: ${describeError(failure)}`;
        },
      );
    });
    byId('download-transcript').addEventListener('click', () => {
      const transcript = this.#transcripts.at(-1);
      const text = transcript?.text();
      if (transcript === undefined || text === undefined) return;
      const stem = safeFileName(`${connection.username}-${transcript.sessionId ?? 'session'}`);
      downloadTranscript(text, `${stem}.jsonl`);
    });
  }

  async open(name: string): Promise<void> {
    const connection = this.#connected();
    if (name.startsWith('#')) {
      await connection.join(name);
      this.#inbox.joined(name);
    }
    const conversation = this.state.open(name);
    const input = byId<HTMLInputElement>('message-input');
    input.disabled = false;
    byId<HTMLButtonElement>('send').disabled = false;
    input.focus();
    if (conversation.historyLoaded) return;
    conversation.historyLoaded = true;
    const history = await connection.history(name);
    this.#inbox.onHistory(name, history.messages);
  }
}

void main().catch((error: unknown) => {
  byId('probe-text').textContent = `The page failed: ${describeError(error)}`;
  showScreen('probe-screen');
});
