import { PassThrough } from 'node:stream';

import { MemoryPeerKeyStore } from '@securechat/client';

import { FakeChatClient, deliver, incoming } from '../../test/chat-fakes';
import { ChatController } from './chat-controller';
import { ChatModel } from './chat-model';
import { LineUi } from './line-ui';

describe('LineUi', () => {
  it('prints one line per event, own messages once stored, and no raw escapes', async () => {
    const client = new FakeChatClient();
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 1, id: 'c-1' });
    const model = new ChatModel('alice');
    const controller = new ChatController({
      client: client.asClient(),
      model,
      peerKeys: new MemoryPeerKeyStore(),
      quit: () => undefined,
    });
    const input = new PassThrough();
    const output = new PassThrough();
    const chunks: string[] = [];
    output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    let quit!: () => void;
    const quitting = new Promise<void>((resolve) => (quit = resolve));
    const ui = new LineUi(input, output, model, controller, () => quit());
    ui.start();

    client.emit(
      'message',
      incoming({ from: 'eve\u001b[2J', to: '#r\u001b]0;x\u0007', body: 'a\nb' }),
    );
    input.end('/msg bob hi\n');
    await quitting;
    ui.stop();
    await new Promise((resolve) => setImmediate(resolve));

    const lines = chunks.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[#r<U\+001B>\]0;x<U\+0007>\] \d\d:\d\d eve<U\+001B>\[2J ✓: a b$/);
    expect(lines[1]).toMatch(/^\[bob\] \d\d:\d\d alice ✓: hi$/);
    expect(client.send).toHaveBeenCalledWith('bob', 'hi');
  });

  it('lets a script go on while a history loads, and shows it before quitting', async () => {
    const client = new FakeChatClient();
    client.send.mockResolvedValue({ msgId: 'm-1', serverTs: 1, id: 'c-1' });
    let answerHistory!: () => void;
    client.history.mockImplementation(
      (withWhom) =>
        new Promise((resolve) => {
          answerHistory = () =>
            resolve({
              type: 'history',
              with: withWhom,
              messages: [deliver({ from: 'bob', to: 'alice', serverTs: 1, body: 'earlier' })],
            });
        }),
    );
    const model = new ChatModel('alice');
    const quit = jest.fn();
    const controller = new ChatController({
      client: client.asClient(),
      model,
      peerKeys: new MemoryPeerKeyStore(),
      quit,
    });
    const input = new PassThrough();
    const output = new PassThrough();
    const chunks: string[] = [];
    output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    const ui = new LineUi(input, output, model, controller, quit);
    ui.start();

    input.write('/msg bob\nhi\n/quit\n');
    await new Promise((resolve) => setImmediate(resolve));
    // "hi" did not wait for the history; /quit does.
    expect(client.send).toHaveBeenCalledWith('bob', 'hi');
    expect(quit).not.toHaveBeenCalled();

    answerHistory();
    await new Promise((resolve) => setImmediate(resolve));
    expect(quit).toHaveBeenCalledTimes(1);
    ui.stop();
    const lines = chunks.join('').split('\n').filter(Boolean);
    // Printed as they come: the history after the line that did not wait for it.
    expect(lines).toEqual([
      expect.stringMatching(/^\[bob\] \d\d:\d\d alice ✓: hi$/),
      expect.stringMatching(/^\[bob\] \d\d:\d\d bob ✓: earlier$/),
    ]);
  });

  it('prints the offline status once, not every second of its countdown', () => {
    jest.useFakeTimers();
    try {
      const client = new FakeChatClient();
      const model = new ChatModel('alice');
      const controller = new ChatController({
        client: client.asClient(),
        model,
        peerKeys: new MemoryPeerKeyStore(),
        quit: () => undefined,
      });
      const output = new PassThrough();
      const ui = new LineUi(new PassThrough(), output, model, controller, () => undefined);
      ui.start();
      client.emit('state', 'reconnecting', { attempt: 1, delayMs: 30_000 });
      jest.advanceTimersByTime(30_000);
      client.emit('state', 'connecting', { attempt: 1 }); // the wait is over: dialling
      ui.stop();
      controller.dispose();

      const text = String(output.read() ?? '');
      expect(model.status).toBe('offline, reconnecting…');
      expect(text.split('\n').filter((line) => line.startsWith('* status:'))).toEqual([
        '* status: offline, retrying in 30 s',
        '* status: offline, reconnecting…',
      ]);
    } finally {
      jest.useRealTimers();
    }
  });
});
