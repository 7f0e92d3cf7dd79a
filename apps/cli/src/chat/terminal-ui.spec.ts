import { PassThrough } from 'node:stream';

import { type ChatController } from './chat-controller';
import { ChatModel, STATUS_KEY } from './chat-model';
import { TerminalUi } from './terminal-ui';

function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function setup() {
  const input = new PassThrough();
  const output = new PassThrough();
  output.resume(); // the screen: drawn, not read
  const model = new ChatModel('alice');
  /** Each submitted line's request, answered when the test says so. */
  const pending: { line: string; done: () => void; fail: (error: Error) => void }[] = [];
  const submit = jest.fn(
    (line: string) =>
      new Promise<void>((resolve, reject) => pending.push({ line, done: resolve, fail: reject })),
  );
  const controller = { submit } as unknown as ChatController;
  const ui = new TerminalUi({ input, output, model, controller, quit: () => undefined });
  ui.start();
  return { input, model, ui, submit, pending };
}

describe('TerminalUi', () => {
  it('handles submitted lines one at a time, in the order typed', async () => {
    const { input, ui, submit, pending } = setup();
    input.write('/msg carol\rsecret\r');
    await settled();
    // "secret" waits until /msg carol is done: it must not overtake it.
    expect(submit.mock.calls).toEqual([['/msg carol']]);

    pending[0]?.done();
    await settled();
    expect(submit.mock.calls).toEqual([['/msg carol'], ['secret']]);
    pending[1]?.done();
    ui.stop();
  });

  it('goes on with the next line after one that failed, and shows the failure', async () => {
    const { input, model, ui, submit, pending } = setup();
    input.write('one\rtwo\r');
    await settled();
    pending[0]?.fail(new Error('something broke'));
    await settled();
    expect(submit.mock.calls).toEqual([['one'], ['two']]);
    expect(model.conversation(STATUS_KEY)?.lines.map((l) => l.text)).toEqual(['something broke']);
    pending[1]?.done();
    ui.stop();
  });
});
