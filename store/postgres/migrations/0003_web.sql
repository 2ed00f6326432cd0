-- The web chat (bots/web). Sessions and one-time login tokens are kept under
-- the SHA-256 of their secret, so that a copy of the database logs no one in.
CREATE TABLE web_sessions (
	token_hash bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

CREATE TABLE web_tokens (
	token_hash bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL,
	chat       text COLLATE "C" NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX web_tokens_by_expiry ON web_tokens (expires_at);

-- web_conversations is each web user's list of conversations.
CREATE TABLE web_conversations (
	user_id    text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	chat       text COLLATE "C" NOT NULL,
	title      text NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, id)
);

-- web_images holds the pictures drawn with /image in each chat, the newest
-- few (store.MaxWebImagesPerChat); seq orders them by age.
CREATE TABLE web_images (
	chat   text COLLATE "C" NOT NULL,
	sha256 text COLLATE "C" NOT NULL,
	prompt text NOT NULL,
	seq    bigserial NOT NULL,
	data   bytea NOT NULL,
	PRIMARY KEY (chat, sha256)
);
CREATE INDEX web_images_by_prompt ON web_images (chat, prompt, seq);
