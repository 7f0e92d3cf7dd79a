import { CHAT_HELP, HISTORY_DEFAULT, HISTORY_MAX, parseChatInput } from './chat-input';

describe('parseChatInput', () => {
  it('ignores blank lines', () => {
    expect(parseChatInput('')).toEqual({ kind: 'none' });
    expect(parseChatInput('   \t ')).toEqual({ kind: 'none' });
  });

  it('sends plain text as typed, spaces included', () => {
    expect(parseChatInput('hello there')).toEqual({ kind: 'say', text: 'hello there' });
    expect(parseChatInput('  indented ')).toEqual({ kind: 'say', text: '  indented ' });
    expect(parseChatInput('a /msg in the middle')).toEqual({
      kind: 'say',
      text: 'a /msg in the middle',
    });
  });

  it('sends a line starting with "//" with one slash removed', () => {
    expect(parseChatInput('//msg is a command')).toEqual({
      kind: 'say',
      text: '/msg is a command',
    });
    expect(parseChatInput('  //shrug')).toEqual({ kind: 'say', text: '/shrug' });
    expect(parseChatInput('//')).toEqual({ kind: 'say', text: '/' });
  });

  describe('/msg', () => {
    it.each(['/msg', '/m', '/query', '/MSG'])('%s opens a conversation', (command) => {
      expect(parseChatInput(`${command} bob`)).toEqual({ kind: 'msg', to: 'bob' });
    });

    it('carries the text after the name', () => {
      expect(parseChatInput('/msg bob  hi   there ')).toEqual({
        kind: 'msg',
        to: 'bob',
        text: 'hi   there',
      });
      expect(parseChatInput('/msg #ops deploy done')).toEqual({
        kind: 'msg',
        to: '#ops',
        text: 'deploy done',
      });
    });

    it('needs a valid username or room', () => {
      expect(parseChatInput('/msg')).toEqual({
        kind: 'invalid',
        problem: 'usage: /msg NAME|#room [text]',
      });
      expect(parseChatInput('/msg Bob hi')).toEqual({
        kind: 'invalid',
        problem: '"Bob" is neither a username nor a #room',
      });
      expect(parseChatInput('/msg # hi').kind).toBe('invalid');
    });
  });

  describe('/join', () => {
    it.each(['/join', '/j'])('%s joins a room', (command) => {
      expect(parseChatInput(`${command} #general`)).toEqual({ kind: 'join', room: '#general' });
    });

    it.each(['/join', '/join general', '/join #UPPER', '/join bob'])('refuses %j', (line) => {
      expect(parseChatInput(line)).toEqual({ kind: 'invalid', problem: 'usage: /join #room' });
    });
  });

  describe('/leave', () => {
    it.each(['/leave', '/part'])('%s leaves the current room or the one named', (command) => {
      expect(parseChatInput(command)).toEqual({ kind: 'leave' });
      expect(parseChatInput(`${command} #ops`)).toEqual({ kind: 'leave', room: '#ops' });
    });

    it('refuses something that is not a room', () => {
      expect(parseChatInput('/leave bob')).toEqual({
        kind: 'invalid',
        problem: 'usage: /leave [#room]',
      });
    });
  });

  describe('/history', () => {
    it('defaults to the last 50 and takes a count up to the maximum', () => {
      expect(HISTORY_DEFAULT).toBe(50);
      expect(parseChatInput('/history')).toEqual({ kind: 'history', limit: HISTORY_DEFAULT });
      expect(parseChatInput('/history 1')).toEqual({ kind: 'history', limit: 1 });
      expect(parseChatInput(`/history ${HISTORY_MAX}`)).toEqual({
        kind: 'history',
        limit: HISTORY_MAX,
      });
    });

    it.each(['0', String(HISTORY_MAX + 1), '-1', '1.5', 'ten', '1e2'])('refuses %j', (n) => {
      expect(parseChatInput(`/history ${n}`)).toEqual({
        kind: 'invalid',
        problem: `usage: /history [1-${HISTORY_MAX}]`,
      });
    });
  });

  describe('/whois', () => {
    it('asks about a valid username', () => {
      expect(parseChatInput('/whois carol')).toEqual({ kind: 'whois', user: 'carol' });
    });

    it.each(['/whois', '/whois #room', '/whois x'])('refuses %j', (line) => {
      expect(parseChatInput(line)).toEqual({ kind: 'invalid', problem: 'usage: /whois NAME' });
    });
  });

  describe('/trust', () => {
    const F = `sha256:${'c'.repeat(64)}`;

    it('takes a username and, optionally, the fingerprint checked out of band', () => {
      expect(parseChatInput('/trust carol')).toEqual({ kind: 'trust', user: 'carol' });
      expect(parseChatInput(`/trust carol ${F}`)).toEqual({
        kind: 'trust',
        user: 'carol',
        fingerprint: F,
      });
    });

    it.each(['/trust', '/trust #ops', '/trust carol sha256:abc', `/trust carol ${F} extra`])(
      'refuses %j',
      (line) => {
        expect(parseChatInput(line)).toEqual({
          kind: 'invalid',
          problem: 'usage: /trust NAME [sha256:<64 hex digits>]',
        });
      },
    );
  });

  it.each(['/help', '/?', '/HELP'])('%s asks for help', (line) => {
    expect(parseChatInput(line)).toEqual({ kind: 'help' });
  });

  it.each(['/quit', '/exit', '/q', ' /quit '])('%j quits', (line) => {
    expect(parseChatInput(line)).toEqual({ kind: 'quit' });
  });

  it('names an unknown command and the "//" escape', () => {
    expect(parseChatInput('/shrug')).toEqual({
      kind: 'invalid',
      problem: 'unknown command /shrug (try /help; "//" sends a leading slash)',
    });
    expect(parseChatInput('/').kind).toBe('invalid');
  });

  it('lists every command in the help', () => {
    const help = CHAT_HELP.join('\n');
    for (const command of [
      '/msg',
      '/join',
      '/leave',
      '/history',
      '/whois',
      '/trust',
      '/help',
      '/quit',
    ]) {
      expect(help).toContain(command);
    }
  });
});
