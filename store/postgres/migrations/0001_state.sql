-- The bot's state, as the bbolt store keeps it. Keys are text in the "C"
-- collation, so that they compare and sort byte by byte as bbolt's keys do,
-- whatever the database's locale.

-- chats holds each chat's last sequence number: like a bbolt bucket's
-- sequence, it only grows, until Reset deletes the row.
CREATE TABLE chats (
	chat     text COLLATE "C" PRIMARY KEY,
	last_seq bigint NOT NULL
);

-- messages holds each chat's messages, one conversation.Message as JSON
-- (the json type keeps the exact text, as bbolt does) per sequence number.
CREATE TABLE messages (
	chat text COLLATE "C" NOT NULL,
	seq  bigint NOT NULL,
	body json NOT NULL,
	PRIMARY KEY (chat, seq)
);

-- blobs holds the attachments kept for each chat, once per content hash,
-- with the sequence number of the newest message that uses each: they go
-- when that message is pruned, or oldest first over the chat's byte cap.
CREATE TABLE blobs (
	chat   text COLLATE "C" NOT NULL,
	sha256 text COLLATE "C" NOT NULL,
	seq    bigint NOT NULL,
	size   bigint NOT NULL,
	data   bytea NOT NULL,
	PRIMARY KEY (chat, sha256)
);
CREATE INDEX blobs_by_age ON blobs (chat, seq, sha256);

-- chat_settings holds each chat's conversation.ChatSettings as JSON.
CREATE TABLE chat_settings (
	chat text COLLATE "C" PRIMARY KEY,
	body json NOT NULL
);

-- usage holds the tokens each user spent on each day (UTC).
CREATE TABLE usage (
	user_id text COLLATE "C" NOT NULL,
	day     date NOT NULL,
	tokens  bigint NOT NULL,
	PRIMARY KEY (user_id, day)
);

-- cursors holds platform cursors, such as Telegram's update offset.
CREATE TABLE cursors (
	name  text COLLATE "C" PRIMARY KEY,
	value bigint NOT NULL
);

-- seen holds recently seen event keys (deduplication) until they expire.
CREATE TABLE seen (
	key        text COLLATE "C" PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX seen_by_expiry ON seen (expires_at);

-- pending holds the chats whose reply is being written.
CREATE TABLE pending (
	chat      text COLLATE "C" PRIMARY KEY,
	marked_at timestamptz NOT NULL DEFAULT now()
);
