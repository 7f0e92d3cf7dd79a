/**
 * The database schema (Drizzle). One Postgres database serves auth (users) and relay
 * (messages, deliveries, rooms, transcripts); in the embedded mode it is PGlite, so the SQL is
 * the one production runs. Migrations in db/migrations are generated from this file by
 * `npm run db:generate` and checked in.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (value) => (Buffer.isBuffer(value) ? value : Buffer.from(value)),
});

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
};

export const users = pgTable('users', {
  username: text('username').primaryKey(),
  /** argon2id PHC string. */
  passwordHash: text('password_hash').notNull(),
  /** SubjectPublicKeyInfo DER of the user's RSA or Ed25519 key. */
  publicKey: bytea('public_key').notNull(),
  /** `sha256:` + hex of publicKey. */
  fingerprint: text('fingerprint').notNull(),
  disabled: boolean('disabled').notNull().default(false),
  /** Set when the account is deleted: it can no longer log in; its messages stay. */
  deletedAt: timestamp('deleted_at', { withTimezone: true }),
  /**
   * The account's credential generation: raised by every change that must end the sessions
   * opened before it (password reset, key change, disable, delete). A login's answer carries
   * it, and gateways compare their sessions' value with the stored one from time to time, so a
   * session outlives such a change by at most one recheck period even when the gateway missed
   * the order to close it (apps/gateway-tcp session-recheck.ts).
   */
  credentialsVersion: integer('credentials_version').notNull().default(0),
  ...timestamps,
});

/** Every message, stored before it is acknowledged (§6: `ack` means durable). */
export const messages = pgTable(
  'messages',
  {
    /** The `msg_id`: increasing, so one conversation's order is the storage order. */
    id: bigserial('id', { mode: 'bigint' }).primaryKey(),
    sender: text('sender').notNull(),
    /** The client's `id`; (sender, client_id) is unique, so a repeated send is stored once. */
    clientId: text('client_id').notNull(),
    /** Username or `#room`, as sent. */
    recipient: text('recipient').notNull(),
    /** `dm:<a>:<b>` (sorted) or the room name: what history pages through. */
    conversation: text('conversation').notNull(),
    body: text('body').notNull(),
    clientTs: bigint('client_ts', { mode: 'number' }).notNull(),
    serverTs: bigint('server_ts', { mode: 'number' }).notNull(),
    sig: text('sig').notNull(),
  },
  (t) => [
    uniqueIndex('messages_sender_client_id_key').on(t.sender, t.clientId),
    index('messages_conversation_id_idx').on(t.conversation, t.id),
  ],
);

/** Per-recipient delivery state: a row per recipient user, pending until `delivered`. */
export const deliveries = pgTable(
  'deliveries',
  {
    recipient: text('recipient').notNull(),
    messageId: bigint('message_id', { mode: 'bigint' })
      .notNull()
      .references(() => messages.id),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.recipient, t.messageId] }),
    index('deliveries_pending_idx')
      .on(t.recipient, t.messageId)
      .where(sql`${t.deliveredAt} is null`),
  ],
);

export const rooms = pgTable('rooms', {
  name: text('name').primaryKey(),
  createdBy: text('created_by').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const roomMembers = pgTable(
  'room_members',
  {
    room: text('room')
      .notNull()
      .references(() => rooms.name),
    username: text('username').notNull(),
    joinedAt: timestamp('joined_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.room, t.username] }),
    index('room_members_user_idx').on(t.username),
  ],
);

/**
 * One row per session (§7): who, where, when, both views and both signatures. Append-only in
 * spirit: rows are inserted at login and completed once at the end; retention only ever sets
 * `records_purged_at` (and deletes the session's chunks), never a chain or a signature.
 */
export const transcriptSessions = pgTable(
  'transcript_sessions',
  {
    sessionId: text('session_id').primaryKey(),
    username: text('username').notNull(),
    gateway: text('gateway').notNull(),
    /** `full` (every record) or `digest` (chains and receipts only). */
    mode: text('mode').notNull(),
    /** H2: the start of both chains. */
    h2: bytea('h2').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true }),
    /** `open`, `agreed`, `disputed` or `incomplete`. */
    status: text('status').notNull(),
    /** The server's view when the session ended (the receipt's, when there was one). */
    c2sCount: integer('c2s_count'),
    c2sChain: bytea('c2s_chain'),
    s2cCount: integer('s2c_count'),
    s2cChain: bytea('s2c_chain'),
    receiptSignature: bytea('receipt_signature'),
    /** The client's view and signature, from `countersign`. */
    clientC2sCount: integer('client_c2s_count'),
    clientC2sChain: bytea('client_c2s_chain'),
    clientS2cCount: integer('client_s2c_count'),
    clientS2cChain: bytea('client_s2c_chain'),
    countersignature: bytea('countersignature'),
    /**
     * Set when retention or an admin purge deleted the session's records (its chunks): the row,
     * chains and signatures stay, so the receipt still verifies against them, but the session
     * can no longer be rebuilt or exported from the store. Null: the records are all kept.
     */
    recordsPurgedAt: timestamp('records_purged_at', { withTimezone: true }),
  },
  (t) => [
    index('transcript_sessions_user_idx').on(t.username, t.startedAt),
    /**
     * What a purge looks for, oldest first: sessions whose records it has not deleted yet, and
     * the few it deleted while they were still open (their gateway may have stored records
     * since). Keyed by when the session ended (started, if it never did).
     */
    index('transcript_sessions_purge_idx')
      .on(sql`coalesce(${t.endedAt}, ${t.startedAt})`, t.sessionId)
      .where(
        sql`${t.recordsPurgedAt} is null or ${t.endedAt} is null or ${t.endedAt} >= ${t.recordsPurgedAt}`,
      ),
  ],
);

/**
 * Every record of every session, byte-exact, in order (login record excluded: the password),
 * in chunks: one row holds consecutive records of one session (libs/core transcript-chunk.ts),
 * as the gateway shipped them in one flush. Inserted only, never updated.
 */
export const transcriptChunks = pgTable(
  'transcript_chunks',
  {
    sessionId: text('session_id')
      .notNull()
      .references(() => transcriptSessions.sessionId),
    /** Position of the chunk's first record; positions count both directions interleaved. */
    firstPosition: integer('first_position').notNull(),
    /** How many records the chunk holds: its last position is first + count - 1. */
    recordCount: integer('record_count').notNull(),
    /** `u8 flags || u32be length || plaintext` per record (flags: 1 = s2c, 2 = chained). */
    records: bytea('records').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sessionId, t.firstPosition] })],
);

/**
 * One row per admin API action (every change and every export), newest last. Written by the
 * auth service's admin HTTP API; never updated or deleted by it.
 */
export const adminAudit = pgTable('admin_audit', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  /** Who acted: `token:` + a short hash prefix of the bearer token, never the token. */
  actor: text('actor').notNull(),
  /** What was done, e.g. `user.create`, `user.disable`, `transcript.export`. */
  action: text('action').notNull(),
  /** What it was done to: a username or a session id. */
  target: text('target').notNull(),
  /** Action-specific facts (a fingerprint, a count); never a password or token. */
  details: jsonb('details').notNull().default({}),
  /** The HTTP client's address as the admin server saw it. */
  sourceAddress: text('source_address'),
});
