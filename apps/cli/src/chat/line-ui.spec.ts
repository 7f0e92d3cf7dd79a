import { PassThrough } from 'node:stream';

import { MemoryPeerKeyStore } from '@securechat/client';

import { FakeChatClient, incoming } from '../../test/chat-fakes';
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
});
