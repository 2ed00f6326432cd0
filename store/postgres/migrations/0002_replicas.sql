-- Several chatbot processes (replicas) on one database. Each holds a lease,
-- a row of replicas that it renews every few seconds; what a replica holds
-- (chat locks, leaderships) refers to its row, and goes when the row goes.
-- A replica deletes the rows of leases that expired (by the database's
-- clock) before it takes a lock or leadership.
CREATE TABLE replicas (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL
);
CREATE INDEX replicas_by_expiry ON replicas (expires_at);

-- chat_locks holds the chats with a turn running, and where: one turn at a
-- time per chat over all replicas. token names one holding.
CREATE TABLE chat_locks (
	chat      text COLLATE "C" PRIMARY KEY,
	owner     text COLLATE "C" NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
	token     text NOT NULL,
	locked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_locks_by_owner ON chat_locks (owner);

-- leaders holds each named leadership (such as Telegram polling): its
-- holder, if any, and its term, which grows at every election.
CREATE TABLE leaders (
	name       text COLLATE "C" PRIMARY KEY,
	owner      text COLLATE "C" REFERENCES replicas (id) ON DELETE SET NULL,
	token      text,
	term       bigint NOT NULL,
	elected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leaders_by_owner ON leaders (owner);

-- A pending mark now belongs to the replica writing the reply, so that only
-- a dead replica's marks are announced. Marks from before (one process, now
-- stopped) get no owner: they are a dead replica's.
ALTER TABLE pending DROP CONSTRAINT pending_pkey;
ALTER TABLE pending ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE pending ADD PRIMARY KEY (chat, owner);
CREATE INDEX pending_by_owner ON pending (owner);
