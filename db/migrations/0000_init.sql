CREATE TABLE "deliveries" (
	"recipient" text NOT NULL,
	"message_id" bigint NOT NULL,
	"delivered_at" timestamp with time zone,
	CONSTRAINT "deliveries_recipient_message_id_pk" PRIMARY KEY("recipient","message_id")
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"sender" text NOT NULL,
	"client_id" text NOT NULL,
	"recipient" text NOT NULL,
	"conversation" text NOT NULL,
	"body" text NOT NULL,
	"client_ts" bigint NOT NULL,
	"server_ts" bigint NOT NULL,
	"sig" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "room_members" (
	"room" text NOT NULL,
	"username" text NOT NULL,
	"joined_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "room_members_room_username_pk" PRIMARY KEY("room","username")
);
--> statement-breakpoint
CREATE TABLE "rooms" (
	"name" text PRIMARY KEY NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "transcript_records" (
	"session_id" text NOT NULL,
	"position" integer NOT NULL,
	"direction" text NOT NULL,
	"chained" boolean NOT NULL,
	"plaintext" "bytea" NOT NULL,
	CONSTRAINT "transcript_records_session_id_position_pk" PRIMARY KEY("session_id","position")
);
--> statement-breakpoint
CREATE TABLE "transcript_sessions" (
	"session_id" text PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"gateway" text NOT NULL,
	"mode" text NOT NULL,
	"h2" "bytea" NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone,
	"status" text NOT NULL,
	"c2s_count" integer,
	"c2s_chain" "bytea",
	"s2c_count" integer,
	"s2c_chain" "bytea",
	"receipt_signature" "bytea",
	"client_c2s_count" integer,
	"client_c2s_chain" "bytea",
	"client_s2c_count" integer,
	"client_s2c_chain" "bytea",
	"countersignature" "bytea"
);
--> statement-breakpoint
CREATE TABLE "users" (
	"username" text PRIMARY KEY NOT NULL,
	"password_hash" text NOT NULL,
	"public_key" "bytea" NOT NULL,
	"fingerprint" text NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "room_members" ADD CONSTRAINT "room_members_room_rooms_name_fk" FOREIGN KEY ("room") REFERENCES "public"."rooms"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "transcript_records" ADD CONSTRAINT "transcript_records_session_id_transcript_sessions_session_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."transcript_sessions"("session_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deliveries_pending_idx" ON "deliveries" USING btree ("recipient","message_id") WHERE "deliveries"."delivered_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "messages_sender_client_id_key" ON "messages" USING btree ("sender","client_id");--> statement-breakpoint
CREATE INDEX "messages_conversation_id_idx" ON "messages" USING btree ("conversation","id");--> statement-breakpoint
CREATE INDEX "room_members_user_idx" ON "room_members" USING btree ("username");--> statement-breakpoint
CREATE INDEX "transcript_sessions_user_idx" ON "transcript_sessions" USING btree ("username","started_at");