/** Readable log lines: what a JSON line becomes on a terminal, and that no input breaks it. */
import fc from 'fast-check';

import { formatLogLine, PrettyDestination } from './pretty-log';

const line = (fields: Record<string, unknown>) =>
  JSON.stringify({
    level: 'info',
    time: '2026-12-06T00:47:26.369Z',
    service: 'embedded',
    pid: 42,
    ...fields,
  });

it('shows time, level, context and message, then the other members as key=value', () => {
  expect(
    formatLogLine(
      line({ context: 'Ops', host: '127.0.0.1', port: 9090, msg: 'ops endpoints listening' }),
    ),
  ).toBe('00:47:26.369 INFO  Ops: ops endpoints listening host=127.0.0.1 port=9090');
});

it('quotes a value that would otherwise be misread, and shows objects as JSON', () => {
  expect(
    formatLogLine(
      line({ level: 'warn', msg: 'refused', reason: 'too many', peer: { conn: 'c1' }, ok: false }),
    ),
  ).toBe('00:47:26.369 WARN  refused reason="too many" peer={"conn":"c1"} ok=false');
});

it('puts a stack on indented lines below the message', () => {
  const text = formatLogLine(
    line({
      level: 'error',
      context: 'Gateway',
      msg: 'boom',
      err: { message: 'boom', stack: 'Error: boom\n    at f (a.js:1:1)' },
    }),
  );
  expect(text.split('\n')).toEqual([
    '00:47:26.369 ERROR Gateway: boom',
    '    Error: boom',
    '        at f (a.js:1:1)',
  ]);
});

it('passes through what is not a JSON object', () => {
  for (const text of ['plain words', '[1,2]', '"a string"', '{"event":', 'null']) {
    expect(formatLogLine(text)).toBe(text);
  }
});

it('never lets a control character from a logged value reach the terminal raw', () => {
  const text = formatLogLine(line({ msg: 'from \u001b[2Jpeer\r\nfake line', name: 'x\u009by' }));
  expect(text).not.toMatch(/\p{Cc}/u);
  expect(text).toContain('from \\u001b[2Jpeer\\u000d\\u000afake line');
});

it('never throws, and writes one line per entry for any JSON object without a stack', () => {
  fc.assert(
    fc.property(
      fc.dictionary(
        fc.string().filter((k) => k !== 'stack' && k !== 'err'),
        fc.jsonValue(),
      ),
      (fields) => {
        const text = formatLogLine(JSON.stringify(fields));
        expect(text).not.toContain('\n');
        expect(text).not.toMatch(/\p{Cc}/u);
      },
    ),
  );
  fc.assert(
    fc.property(fc.string(), (text) => {
      expect(typeof formatLogLine(text)).toBe('string');
    }),
  );
});

it('formats each line pino hands it and passes flushes through to the sink', () => {
  const written: string[] = [];
  const flushSync = jest.fn();
  const destination = new PrettyDestination({ write: (data) => written.push(data), flushSync });
  destination.write(`${line({ msg: 'one' })}\n`);
  destination.flushSync();
  const flushed = jest.fn();
  destination.flush(flushed);
  expect(written).toEqual(['00:47:26.369 INFO  one\n']);
  expect(flushSync).toHaveBeenCalledTimes(1);
  expect(flushed).toHaveBeenCalledTimes(1);
});
