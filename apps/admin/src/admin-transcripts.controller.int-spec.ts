/**
 * The export endpoint over a real HTTP socket (loopback, no database), with
 * AdminTranscriptsService mocked: the lines are streamed with the export's headers, a refusal
 * is still a JSON error, and a failure after the response started aborts the connection (a
 * cut-off export must not look whole).
 */
import { type INestApplication, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type NestExpressApplication } from '@nestjs/platform-express';

import { CONFIG } from '@securechat/core';
import { TranscriptNotFoundError } from '@securechat/relay';

import { AdminExceptionFilter } from './admin-exception.filter';
import { AdminTranscriptsController } from './admin-transcripts.controller';
import { AdminTranscriptsService } from './admin-transcripts.service';

const TOKEN = 'a'.repeat(40);

const transcripts = {
  list: jest.fn(),
  export: jest.fn<Promise<AsyncIterable<string>>, [unknown, string]>(),
};

@Module({
  controllers: [AdminTranscriptsController],
  providers: [
    { provide: AdminTranscriptsService, useValue: transcripts },
    { provide: CONFIG, useValue: { admin: { token: TOKEN } } },
  ],
})
class TestModule {}

const logged: string[] = [];
const logger: LoggerService = {
  log: () => undefined,
  warn: () => undefined,
  error: (message: unknown) => void logged.push(String(message)),
};

let app: INestApplication;
let port: number;

beforeAll(async () => {
  app = await NestFactory.create<NestExpressApplication>(TestModule, { logger });
  app.useGlobalFilters(new AdminExceptionFilter());
  await app.listen(0, '127.0.0.1');
  port = (app.getHttpServer() as { address(): { port: number } }).address().port;
});

afterAll(() => app.close());

beforeEach(() => {
  logged.length = 0;
  transcripts.export.mockReset();
});

const get = (sessionId: string) =>
  fetch(`http://127.0.0.1:${port}/admin/transcripts/${sessionId}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });

async function* lines(count: number, failure?: Error): AsyncGenerator<string> {
  for (let i = 0; i < count; i++) {
    await Promise.resolve();
    yield `${JSON.stringify({ kind: 'record', n: i, text: 'x'.repeat(1000) })}\n`;
  }
  if (failure) throw failure;
}

describe('GET /admin/transcripts/:sessionId', () => {
  it('streams the lines as x-ndjson, not to be cached', async () => {
    transcripts.export.mockResolvedValue(lines(500));
    const response = await get('s-1');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = await response.text();
    const parsed = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { n: number });
    expect(parsed.map((l) => l.n)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(transcripts.export).toHaveBeenCalledWith(expect.anything(), 's-1');
  });

  it('answers a refusal with the usual JSON error', async () => {
    transcripts.export.mockRejectedValue(new TranscriptNotFoundError('s-9'));
    const response = await get('s-9');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toMatchObject({ code: 'transcript_not_found' });
  });

  it('aborts the response when the lines fail after it started, and logs why', async () => {
    const lost = Object.assign(new Error('password=hunter2 in a message'), { code: '57P01' });
    transcripts.export.mockResolvedValue(lines(300, lost));
    const response = await get('s-1');
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
    expect(logged).toEqual([`transcript export of s-1 failed while streaming: Error (57P01)`]);
  });

  it('answers 500 in JSON when the lines fail before the first one', async () => {
    transcripts.export.mockResolvedValue(lines(0, new Error('connection terminated')));
    const response = await get('s-1');
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ code: 'internal' });
    expect(logged).toContain('transcript export of s-1 failed while streaming: Error');
  });
});
