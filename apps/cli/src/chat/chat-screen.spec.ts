import fc from 'fast-check';

import { incoming } from '../../test/chat-fakes';
import { ChatModel, STATUS_KEY } from './chat-model';
import { LIST_WIDTH, MIN_COLUMNS, MIN_ROWS, formatLine, renderChat } from './chat-screen';
import { codePoints } from './sanitize';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function expectGrid(rows: readonly string[], width: number, height: number): void {
  expect(rows).toHaveLength(height);
  for (const row of rows) {
    expect(codePoints(row)).toHaveLength(width);
    expect(row).not.toMatch(CONTROL);
  }
}

function busyModel(): ChatModel {
  const model = new ChatModel('alice');
  model.status = 'connected';
  model.info('signed in as alice on 127.0.0.1:7777; /help lists the commands');
  for (let i = 0; i < 30; i += 1) {
    model.addIncoming(
      incoming({ from: 'bob', to: 'alice', body: `line ${i} ${'word '.repeat(i % 25)}😀` }),
    );
  }
  model.addIncoming(incoming({ from: 'carol', to: '#a_very_long_room_name_indeed_xyz' }));
  model.addOwn('bob', 'x'.repeat(300), Date.now());
  model.input = 'typing something';
  return model;
}

describe('renderChat', () => {
  it('fills 80×24 exactly, with the status bar, list, rule and input line', () => {
    const model = busyModel();
    model.select('bob');
    const screen = renderChat(model, 80, 24);
    expectGrid(screen.rows, 80, 24);
    expect(screen.rows[0]).toMatch(/^ SecureChat · alice · connected\s+$/);
    expect(screen.rows[1]?.slice(0, LIST_WIDTH + 1)).toMatch(/^ {2}status {12}│$/);
    expect(screen.rows[2]).toMatch(/^> bob/);
    expect(screen.rows[22]).toMatch(/^── bob ─+ Tab: next · PgUp\/PgDn · \/help ──$/);
    expect(screen.rows[23]).toBe('> typing something'.padEnd(80));
    expect(screen.cursorRow).toBe(23);
    expect(screen.cursorColumn).toBe(2 + 'typing something'.length);
  });

  it('drops the conversation list at 40×10', () => {
    const model = busyModel();
    model.select('bob');
    const screen = renderChat(model, 40, 10);
    expectGrid(screen.rows, 40, 10);
    expect(screen.rows.join('\n')).not.toContain('│');
    expect(screen.rows.join('\n')).not.toContain('status');
  });

  it('never goes below its minimum size', () => {
    const screen = renderChat(busyModel(), 5, 2);
    expectGrid(screen.rows, MIN_COLUMNS, MIN_ROWS);
  });

  it('is an exact grid without controls for any content and size', () => {
    const body = fc.string({
      unit: fc.oneof(
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        fc.constantFrom('\u001b', '\n', '\r', '\t', ' ', '😀', '\u009b'),
      ),
      maxLength: 200,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('bob', 'carol', '#ops'), body), { maxLength: 15 }),
        body,
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 60 }),
        fc.nat(100),
        (messages, input, width, height, scroll) => {
          const model = new ChatModel('alice');
          for (const [from, text] of messages) {
            model.addIncoming(
              incoming({
                from: from === '#ops' ? 'bob' : from,
                to: from === '#ops' ? '#ops' : 'alice',
                body: text,
              }),
            );
          }
          model.select(messages[0]?.[0] ?? STATUS_KEY);
          model.input = input;
          model.scroll = scroll;
          const screen = renderChat(model, width, height);
          expectGrid(screen.rows, Math.max(width, MIN_COLUMNS), Math.max(height, MIN_ROWS));
          expect(screen.cursorColumn).toBeLessThan(Math.max(width, MIN_COLUMNS));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('shows unread counts and clears them when the conversation is selected', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice' }));
    model.addIncoming(incoming({ from: 'bob', to: 'alice' }));
    model.addIncoming(incoming({ from: 'carol', to: '#ops' }));
    const before = renderChat(model, 80, 24).rows.map((r) => r.slice(0, LIST_WIDTH).trimEnd());
    expect(before).toContain('  bob (2)');
    expect(before).toContain('  #ops (1)');

    model.select('bob');
    const after = renderChat(model, 80, 24).rows.map((r) => r.slice(0, LIST_WIDTH).trimEnd());
    expect(after).toContain('> bob');
    expect(after).toContain('  #ops (1)');
  });

  it('never lets a body, a sender or a room name write raw escapes or newlines', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice', body: 'hi\u001b[2J\nforged line' }));
    model.addIncoming(incoming({ from: 'eve\u001b[2J', to: 'alice', body: 'x' }));
    model.addIncoming(incoming({ from: 'bob', to: '#r\u001b]0;pwned\u0007\n', body: 'y' }));
    for (const key of model.conversations.map((c) => c.key)) {
      model.select(key);
      for (const [w, h] of [
        [80, 24],
        [40, 10],
      ] as const) {
        const screen = renderChat(model, w, h);
        expectGrid(screen.rows, w, h);
      }
    }
    model.select('bob');
    expect(renderChat(model, 80, 24).rows.join('\n')).toContain('hi<U+001B>[2J forged line');
  });

  it('shows a disguised sender, room or own name with its hidden characters visible', () => {
    // A server may send any `from`/`to`: bidi overrides, zero-width characters, tags and
    // look-alike letters would otherwise make one name pass for another.
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob\u200B', to: 'alice', body: 'x' }, 'verified'));
    model.addIncoming(incoming({ from: 'carol', to: '#ops\u202Esnimda', body: 'y' }));
    model.addIncoming(incoming({ from: '\u0430lice\u{E0041}', to: 'alice', body: 'z' }));
    model.select('bob\u200B');
    const rows = renderChat(model, 80, 24).rows.join('\n');
    expect(rows).toContain('bob<U+200B> ✓: x');
    expect(rows).toContain('── bob<U+200B>');
    expect(rows).toContain('  #ops<U+202E>sn (1)'); // the list cuts names to its width
    expect(rows).not.toMatch(/[\u200B\u202E\u0430]|\u{E0041}/u);
    model.select('#ops\u202Esnimda');
    expect(renderChat(model, 80, 24).rows.join('\n')).toContain('── #ops<U+202E>snimda');
    model.select('\u0430lice\u{E0041}');
    expect(renderChat(model, 80, 24).rows.join('\n')).toContain('<U+0430>lice<U+E0041> ✓: z');
  });

  it('never lets the header disguise who is signed in, or a status hide anything', () => {
    const model = new ChatModel('al\u202Eice');
    model.status = 'reconnecting\u2066 (attempt 2)';
    const [header] = renderChat(model, 80, 24).rows;
    expect(header).toContain(' SecureChat · al<U+202E>ice · reconnecting<U+2066> (attempt 2)');
  });

  it.each([
    ['bad_signature', '⚠ BAD SIGNATURE'],
    ['key_changed', '⚠ KEY CHANGED'],
    ['unknown_sender_key', '⚠ UNVERIFIED'],
    ['verified', '✓'],
  ] as const)('marks a %s message with %j', (verification, mark) => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice', body: 'trust me' }, verification));
    model.select('bob');
    const rows = renderChat(model, 80, 24).rows.join('\n');
    expect(rows).toContain(`bob ${mark}: trust me`);
  });

  it('scrolls up, and clamps the scroll to the oldest line', () => {
    const model = new ChatModel('alice');
    for (let i = 0; i < 40; i += 1) model.info(`note ${i}`, 'bob');
    model.select('bob');
    const bottom = renderChat(model, 80, 24).rows;
    expect(bottom[21]).toContain('note 39');

    model.scroll = 5;
    const up = renderChat(model, 80, 24).rows;
    expect(up[21]).toContain('note 34');
    expect(up[22]).toContain('(scrolled up 5)');

    model.scroll = 1000;
    const top = renderChat(model, 80, 24).rows;
    expect(model.scroll).toBe(40 - 21);
    expect(top[1]).toContain('note 0');
    expect(top[21]).toContain('note 20');
  });

  it('shows the end of an input line longer than the screen', () => {
    const model = new ChatModel('alice');
    model.input = `${'a'.repeat(100)}END`;
    const screen = renderChat(model, 40, 10);
    expect(screen.rows[9]).toMatch(/^> a+END $/);
    expect(screen.cursorColumn).toBe(39);
  });

  it('draws a pasted C1 control or bidi control in the input line as a visible escape', () => {
    const model = new ChatModel('alice');
    model.input = 'a\u009b2Jb\u202E';
    const screen = renderChat(model, 40, 10);
    expect(screen.rows[9]).toBe('> a<U+009B>2Jb<U+202E>'.padEnd(40));
    expect(screen.cursorColumn).toBe(2 + 20);
  });
});

describe('formatLine', () => {
  const ts = new Date(2026, 0, 2, 9, 5).getTime();

  it('shows time, author, mark and text', () => {
    const model = new ChatModel('alice');
    model.addIncoming(incoming({ from: 'bob', to: 'alice', serverTs: ts, body: 'hi' }));
    const line = model.conversation('bob')?.lines[0];
    expect(line && formatLine(line)).toBe('09:05 bob ✓: hi');
  });

  it('shows notes and errors without an author', () => {
    const model = new ChatModel('alice');
    model.info('joined', STATUS_KEY, ts);
    model.error('failed', STATUS_KEY, ts);
    const [info, error] = model.conversation(STATUS_KEY)?.lines ?? [];
    expect(info && formatLine(info)).toBe('09:05 * joined');
    expect(error && formatLine(error)).toBe('09:05 ! failed');
  });
});
