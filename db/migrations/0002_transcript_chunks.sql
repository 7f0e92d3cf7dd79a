CREATE TABLE "transcript_chunks" (
	"session_id" text NOT NULL,
	"first_position" integer NOT NULL,
	"record_count" integer NOT NULL,
	"records" "bytea" NOT NULL,
	CONSTRAINT "transcript_chunks_session_id_first_position_pk" PRIMARY KEY("session_id","first_position")
);
--> statement-breakpoint
ALTER TABLE "transcript_chunks" ADD CONSTRAINT "transcript_chunks_session_id_transcript_sessions_session_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."transcript_sessions"("session_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- Records stored before chunks existed: one chunk each, the same bytes in the chunk format
-- (libs/core/src/transcripts/transcript-chunk.ts: u8 flags || u32be length || plaintext).
INSERT INTO "transcript_chunks" ("session_id", "first_position", "record_count", "records")
SELECT "session_id", "position", 1,
	set_byte('\x00'::bytea, 0, (CASE WHEN "direction" = 's2c' THEN 1 ELSE 0 END) + (CASE WHEN "chained" THEN 2 ELSE 0 END))
	|| int4send(length("plaintext")) || "plaintext"
FROM "transcript_records";
