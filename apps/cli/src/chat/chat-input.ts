/**
 * What a line typed in the chat means. Pure parsing: the controller carries it out.
 */
import { isFingerprint } from '@securechat/client';
import { ROOM_PATTERN, USERNAME_PATTERN } from '@securechat/protocol';

export type ChatInput =
  | { readonly kind: 'say'; readonly text: string }
  | { readonly kind: 'msg'; readonly to: string; readonly text?: string }
  | { readonly kind: 'join'; readonly room: string }
  | { readonly kind: 'leave'; readonly room?: string }
  | { readonly kind: 'history'; readonly limit: number }
  | { readonly kind: 'whois'; readonly user: string }
  | { readonly kind: 'trust'; readonly user: string; readonly fingerprint?: string }
  | { readonly kind: 'help' }
  | { readonly kind: 'quit' }
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly problem: string };

export const HISTORY_DEFAULT = 50;
export const HISTORY_MAX = 200;

export const CHAT_HELP = [
  'Commands:',
  '  /msg NAME|#room [text]  open a conversation (and send text to it)',
  '  /join #room             join a room (created if new)',
  '  /leave [#room]          leave a room (default: the current one)',
  `  /history [N]            load N earlier messages of this conversation (default ${HISTORY_DEFAULT}, max ${HISTORY_MAX})`,
  "  /whois NAME             show a user's key fingerprint: the server's and the pinned one",
  "  /trust NAME [sha256:…]  pin NAME's current key after a ⚠ KEY CHANGED (old and new shown)",
  '  /help                   this list',
  '  /quit                   close the session cleanly and exit (also Ctrl-C, Ctrl-D)',
  'Anything else is sent to the current conversation.',
  'Keys: Tab / Shift-Tab (or Ctrl-N / Ctrl-P) switch conversations, PgUp/PgDn scroll.',
  'Marks: ✓ verified/stored, … sending, ⚠ signature or key problem (read before trusting), ✗ not sent.',
];

export function parseChatInput(line: string): ChatInput {
  const text = line.trim();
  if (text === '') return { kind: 'none' };
  if (!text.startsWith('/')) return { kind: 'say', text: line };
  if (text.startsWith('//')) return { kind: 'say', text: line.trimStart().slice(1) };
  const [command = '', ...words] = text.slice(1).split(/\s+/);
  const rest = text.slice(1 + command.length).trim();
  switch (command.toLowerCase()) {
    case 'msg':
    case 'm':
    case 'query': {
      const to = words[0];
      if (to === undefined) return { kind: 'invalid', problem: 'usage: /msg NAME|#room [text]' };
      if (!USERNAME_PATTERN.test(to) && !ROOM_PATTERN.test(to)) {
        return { kind: 'invalid', problem: `"${to}" is neither a username nor a #room` };
      }
      const message = rest.slice(to.length).trim();
      return message === '' ? { kind: 'msg', to } : { kind: 'msg', to, text: message };
    }
    case 'join':
    case 'j': {
      const room = words[0];
      if (room === undefined || !ROOM_PATTERN.test(room)) {
        return { kind: 'invalid', problem: 'usage: /join #room' };
      }
      return { kind: 'join', room };
    }
    case 'leave':
    case 'part': {
      const room = words[0];
      if (room !== undefined && !ROOM_PATTERN.test(room)) {
        return { kind: 'invalid', problem: 'usage: /leave [#room]' };
      }
      return room === undefined ? { kind: 'leave' } : { kind: 'leave', room };
    }
    case 'history': {
      const n = words[0];
      if (n === undefined) return { kind: 'history', limit: HISTORY_DEFAULT };
      if (!/^\d+$/.test(n) || Number(n) < 1 || Number(n) > HISTORY_MAX) {
        return { kind: 'invalid', problem: `usage: /history [1-${HISTORY_MAX}]` };
      }
      return { kind: 'history', limit: Number(n) };
    }
    case 'whois': {
      const user = words[0];
      if (user === undefined || !USERNAME_PATTERN.test(user)) {
        return { kind: 'invalid', problem: 'usage: /whois NAME' };
      }
      return { kind: 'whois', user };
    }
    case 'trust': {
      const [user, fingerprint] = words;
      if (
        user === undefined ||
        !USERNAME_PATTERN.test(user) ||
        words.length > 2 ||
        (fingerprint !== undefined && !isFingerprint(fingerprint))
      ) {
        return { kind: 'invalid', problem: 'usage: /trust NAME [sha256:<64 hex digits>]' };
      }
      return fingerprint === undefined
        ? { kind: 'trust', user }
        : { kind: 'trust', user, fingerprint };
    }
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
    case 'q':
      return { kind: 'quit' };
    default:
      return {
        kind: 'invalid',
        problem: `unknown command /${command} (try /help; "//" sends a leading slash)`,
      };
  }
}
