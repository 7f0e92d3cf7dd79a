import { EventEmitter } from 'node:events';
import { type Socket } from 'node:net';

import { encodeFrame, FrameDecoder, type ProtocolError } from '@securechat/protocol';
import fc from 'fast-check';
import { type WebSocket } from 'ws';

import { messageFramingProblem, WebSocketByteStream } from './websocket-byte-stream';

describe('messageFramingProblem (PROTOCOL.md §11)', () => {
  it('accepts exactly the messages that are one whole frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 300 }), (body) => {
        const frame = encodeFrame(Buffer.from(body), 1024);
        expect(messageFramingProblem(frame, true)).toBeUndefined();
      }),
    );
  });

  it('refuses any binary message whose prefix disagrees with its length, whatever its bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const data = Buffer.from(bytes);
        const whole = data.length >= 4 && data.readUInt32BE(0) + 4 === data.length;
        expect(messageFramingProblem(data, true) === undefined).toBe(whole);
      }),
    );
  });

  it('refuses a text message even when its bytes are one frame', () => {
    expect(messageFramingProblem(encodeFrame(Buffer.from('{}')), false)).toMatch(/text/);
  });

  it('refuses two frames in one message and half a frame', () => {
    const frame = encodeFrame(Buffer.from('{"type":"ping"}'));
    expect(messageFramingProblem(Buffer.concat([frame, frame]), true)).toMatch(/announces/);
    expect(messageFramingProblem(frame.subarray(0, 6), true)).toMatch(/announces/);
    expect(messageFramingProblem(Buffer.of(0, 0, 0), true)).toMatch(/shorter/);
  });
});

/** A `ws` WebSocket and its TCP socket, as far as the stream uses them. */
function fakes() {
  const ws = Object.assign(new EventEmitter(), {
    bufferedAmount: 0,
    sent: [] as Buffer[],
    paused: false,
    closedWith: undefined as number | undefined,
    terminated: false,
    _receiver: { _maxPayload: 65540 },
    isPaused: false,
    send(data: Buffer, _options: unknown, done: (error?: Error) => void) {
      this.sent.push(data);
      done();
    },
    pause() {
      this.paused = this.isPaused = true;
    },
    resume() {
      this.paused = this.isPaused = false;
    },
    close(code: number) {
      this.closedWith = code;
    },
    terminate() {
      this.terminated = true;
    },
  });
  const socket = Object.assign(new EventEmitter(), {
    writableLength: 0,
    timeoutMs: -1,
    setTimeout(ms: number) {
      this.timeoutMs = ms;
    },
    cork() {},
    uncork() {},
  });
  const stream = new WebSocketByteStream(
    ws as unknown as WebSocket,
    socket as unknown as Socket,
    '203.0.113.9',
    30_000,
  );
  return { ws, socket, stream };
}

describe('WebSocketByteStream', () => {
  it('passes each one-frame binary message on as bytes, in order', () => {
    const { ws, stream } = fakes();
    const seen: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => seen.push(chunk));
    const frames = ['{"a":1}', '{"b":2}'].map((text) => encodeFrame(Buffer.from(text)));
    for (const frame of frames) ws.emit('message', frame, true);
    expect(new FrameDecoder().push(Buffer.concat(seen)).map((f) => f.body.toString())).toEqual([
      '{"a":1}',
      '{"b":2}',
    ]);
  });

  it('reports a bad message as bad_frame, stops reading, and passes nothing on', () => {
    const { ws, stream } = fakes();
    const data = jest.fn();
    const errors: ProtocolError[] = [];
    stream.on('data', data);
    stream.on('framingError', (error: ProtocolError) => errors.push(error));
    ws.emit('message', Buffer.from('hello'), false);
    expect(errors.map((error) => error.code)).toEqual(['bad_frame']);
    expect(ws.paused).toBe(true);
    expect(data).not.toHaveBeenCalled();
  });

  it('sends each write as one binary message and reports the bytes waiting', () => {
    const { ws, stream } = fakes();
    const done = jest.fn();
    const frame = encodeFrame(Buffer.from('{"type":"pong"}'));
    stream.write(frame, done);
    expect(ws.sent).toEqual([frame]);
    expect(done).toHaveBeenCalledTimes(1);
    ws.bufferedAmount = 123;
    expect(stream.writableLength).toBe(123);
  });

  it('ends with close 1000 and reads on, dropping what arrives, so the close can finish', () => {
    const { ws, stream } = fakes();
    const data = jest.fn();
    stream.on('data', data);
    stream.pause();
    stream.end();
    expect(ws.closedWith).toBe(1000);
    expect(ws.paused).toBe(false);
    ws.emit('message', encodeFrame(Buffer.from('{}')), true);
    expect(data).not.toHaveBeenCalled();
  });

  it('takes drain and the idle timeout from the TCP socket, close from the WebSocket', () => {
    const { ws, socket, stream } = fakes();
    const events: string[] = [];
    for (const event of ['drain', 'timeout', 'close']) stream.on(event, () => events.push(event));
    stream.setTimeout(5000);
    expect(socket.timeoutMs).toBe(5000);
    socket.emit('drain');
    socket.emit('timeout');
    expect(stream.destroyed).toBe(false);
    ws.emit('close');
    expect(events).toEqual(['drain', 'timeout', 'close']);
    expect(stream.destroyed).toBe(true);
  });

  it('ends the socket at once when ws reports broken WebSocket framing', () => {
    const { ws, stream } = fakes();
    const errors: Error[] = [];
    stream.on('error', (error: Error) => errors.push(error));
    ws.emit('error', new RangeError('Max payload size exceeded'));
    expect(ws.terminated).toBe(true);
    expect(stream.destroyed).toBe(true);
    expect(errors.map((error) => error.message)).toEqual(['Max payload size exceeded']);
  });

  it("passes the frame limit on to ws's receiver (small before login, then the configured one)", () => {
    const { ws, stream } = fakes();
    stream.setMaxFrame(24 * 1024);
    expect(ws._receiver._maxPayload).toBe(24 * 1024 + 4);
    stream.setMaxFrame(65536);
    expect(ws._receiver._maxPayload).toBe(65540);
  });

  describe('a message started and never finished', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('drops the peer after the stall timeout, pings or not', () => {
      const { ws, socket, stream } = fakes();
      const errors: Error[] = [];
      stream.on('error', (error: Error) => errors.push(error));
      socket.emit('data', Buffer.alloc(10)); // part of a message
      jest.advanceTimersByTime(29_999);
      socket.emit('data', Buffer.alloc(6)); // a ping: no message comes of it
      expect(ws.terminated).toBe(false);
      jest.advanceTimersByTime(1);
      expect(ws.terminated).toBe(true);
      expect(errors.map((error) => error.message)).toEqual(['stalled mid-message']);
    });

    it('keeps a peer whose bytes became whole messages, and one we stopped reading', () => {
      const { ws, socket, stream } = fakes();
      stream.on('data', () => undefined);
      stream.on('error', () => undefined);
      socket.emit('data', Buffer.alloc(20));
      ws.emit('message', encodeFrame(Buffer.from('{}')), true);
      jest.advanceTimersByTime(60_000);
      expect(ws.terminated).toBe(false);
      stream.pause(); // our backpressure: what waits in ws is not the peer's stall
      socket.emit('data', Buffer.alloc(20));
      jest.advanceTimersByTime(60_000);
      expect(ws.terminated).toBe(false);
      stream.resume();
      jest.advanceTimersByTime(30_000);
      expect(ws.terminated).toBe(true);
    });
  });

  it('destroys by terminating the WebSocket', () => {
    const { ws, stream } = fakes();
    stream.destroy();
    expect(ws.terminated).toBe(true);
    expect(stream.destroyed).toBe(true);
  });
});
