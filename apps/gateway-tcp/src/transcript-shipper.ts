import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import {
  type ChunkRecord,
  chunkRecordPayload,
  CONFIG,
  encodeChunk,
  encodedRecordSize,
  MAX_CHUNK_RECORD_BYTES,
  type SecureChatConfig,
  type TranscriptBatch,
  type TranscriptChunk,
  type TranscriptClose,
  type TranscriptOpen,
} from '@securechat/core';

import { RelayClient } from './service-clients';

const FLUSH_INTERVAL_MS = 50;
/** Record bytes per relay call; a session's chunk is sealed at this size too. */
const MAX_BATCH_BYTES = 1024 * 1024;
/**
 * Record bytes held while the relay is unreachable; past this, new records are dropped and
 * counted (their sessions' transcripts then fail verification, which is what an auditor
 * must see).
 */
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/** A session's records since its last sealed chunk: consecutive positions from `first`. */
interface OpenChunk {
  readonly sessionId: string;
  readonly first: number;
  readonly records: ChunkRecord[];
  bytes: number;
}

/** A chunk ready to go (or back after a failed call), with what it counts for. */
interface SealedChunk {
  readonly chunk: TranscriptChunk;
  readonly records: number;
  readonly bytes: number;
}

/**
 * Ships every session's records to the relay's transcript store: consecutive records of one
 * session go as one chunk (libs/core transcript-chunk.ts), one relay call per flush for every
 * session, so the store writes a row per session per flush, not per record. In `digest` mode
 * only session rows go: opens and closes carry the chains and receipts. A failed call is
 * retried first with the next flush, chunk for chunk the same (the store ignores a chunk it
 * already has), so a retry never loses or reorders a record.
 */
@Injectable()
export class TranscriptShipper implements OnModuleDestroy {
  readonly #logger = new Logger('TranscriptShipper');
  #opens: TranscriptOpen[] = [];
  /** The chunk each session is filling, in the order sessions started one. */
  readonly #filling = new Map<string, OpenChunk>();
  #sealed: SealedChunk[] = [];
  #closes: TranscriptClose[] = [];
  #bufferedBytes = 0;
  #bufferedRecords = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<boolean> | undefined;
  #dropped = 0;

  constructor(
    @Inject(CONFIG) private readonly config: SecureChatConfig,
    private readonly relay: RelayClient,
  ) {}

  get mode(): 'full' | 'digest' {
    return this.config.transcripts;
  }

  /** Entries waiting to be shipped: opens, records and closes (for metrics and tests). */
  get backlog(): number {
    return this.#opens.length + this.#bufferedRecords + this.#closes.length;
  }

  /** Record bytes waiting to be shipped. */
  get backlogBytes(): number {
    return this.#bufferedBytes;
  }

  open(open: TranscriptOpen): void {
    this.#opens.push(open);
    this.#schedule();
  }

  /**
   * One record of a session at `position` (0, 1, 2, … as the gateway saw them): its plaintext,
   * or only its digest (a request the gateway refused, see ConnectionTranscript). Final once
   * given: it may be sealed into a chunk before this returns.
   */
  record(sessionId: string, position: number, record: ChunkRecord): void {
    if (this.mode === 'digest') return;
    const payload = chunkRecordPayload(record);
    if (payload.length > MAX_CHUNK_RECORD_BYTES) {
      // No frame carries that much: a caller bug, refused here rather than in a later flush.
      throw new RangeError('transcript record larger than any frame');
    }
    const size = encodedRecordSize(payload);
    if (this.#bufferedBytes + size > MAX_BUFFERED_BYTES) {
      if (this.#dropped++ % 1000 === 0) {
        this.#logger.error(`transcript store unreachable: ${this.#dropped} records dropped so far`);
      }
      return;
    }
    let filling = this.#filling.get(sessionId);
    if (filling && filling.first + filling.records.length !== position) {
      // Not the next position (a record was dropped): the chunk ends here.
      this.#seal(filling);
      filling = undefined;
    }
    if (!filling) {
      filling = { sessionId, first: position, records: [], bytes: 0 };
      this.#filling.set(sessionId, filling);
    }
    filling.records.push(record);
    filling.bytes += size;
    this.#bufferedBytes += size;
    this.#bufferedRecords += 1;
    if (filling.bytes >= MAX_BATCH_BYTES) {
      this.#seal(filling);
      void this.flush();
    } else {
      this.#schedule();
    }
  }

  close(close: TranscriptClose): void {
    this.#closes.push(close);
    this.#schedule();
  }

  /**
   * Ships everything buffered, one relay call at a time and in order; resolves once it is
   * stored, or once an attempt failed (the batch is kept, in front, and retried later).
   */
  flush(): Promise<boolean> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #drain(): Promise<boolean> {
    while (this.backlog > 0) {
      for (const filling of [...this.#filling.values()]) this.#seal(filling);
      let bytes = 0;
      let count = 0;
      // At least one chunk; then as many as fit MAX_BATCH_BYTES.
      while (
        count < this.#sealed.length &&
        (count === 0 || bytes + this.#sealed[count]!.bytes <= MAX_BATCH_BYTES)
      ) {
        bytes += this.#sealed[count]!.bytes;
        count += 1;
      }
      const chunks = this.#sealed.splice(0, count);
      const batch: TranscriptBatch = {
        opens: this.#opens.splice(0),
        chunks: chunks.map((sealed) => sealed.chunk),
        // A close travels only once every earlier record has gone, never ahead of them.
        closes: this.#sealed.length === 0 ? this.#closes.splice(0) : [],
      };
      try {
        await this.relay.transcriptAppend(batch);
      } catch (error) {
        // Nothing else is in flight, so putting the batch back in front keeps the order.
        this.#opens.unshift(...batch.opens);
        this.#sealed.unshift(...chunks);
        this.#closes.unshift(...batch.closes);
        this.#logger.warn(`transcript batch not stored, will retry: ${(error as Error).message}`);
        this.#schedule();
        return false;
      }
      for (const sealed of chunks) {
        this.#bufferedBytes -= sealed.bytes;
        this.#bufferedRecords -= sealed.records;
      }
    }
    return true;
  }

  /** Ships the rest before the process exits; gives up after three failed attempts. */
  async onModuleDestroy(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let failures = 0; this.backlog > 0 && failures < 3;) {
      if (!(await this.flush())) failures += 1;
    }
    if (this.#timer) clearTimeout(this.#timer);
    if (this.backlog > 0)
      this.#logger.error(`${this.backlog} transcript entries not stored at shutdown`);
  }

  /** Ends a session's chunk: it goes out as it is, and its next record starts another. */
  #seal(filling: OpenChunk): void {
    this.#filling.delete(filling.sessionId);
    if (filling.records.length === 0) return;
    this.#sealed.push({
      chunk: {
        sessionId: filling.sessionId,
        firstPosition: filling.first,
        records: encodeChunk(filling.records).toString('base64'),
      },
      records: filling.records.length,
      bytes: filling.bytes,
    });
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, FLUSH_INTERVAL_MS);
    this.#timer.unref();
  }
}
