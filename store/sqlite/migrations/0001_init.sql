-- 0001_init: the first schema. Times are integer Unix nanoseconds (UTC);
-- NULL is the zero time. Strings are NOT NULL with '' for "unset".

CREATE TABLE enrollments (
	id                     TEXT PRIMARY KEY,
	type                   TEXT NOT NULL DEFAULT '',
	device_id              TEXT NOT NULL DEFAULT '',
	udid                   TEXT NOT NULL DEFAULT '',
	enrollment_id          TEXT NOT NULL DEFAULT '',
	user_id                TEXT NOT NULL DEFAULT '',
	user_short_name        TEXT NOT NULL DEFAULT '',
	user_long_name         TEXT NOT NULL DEFAULT '',
	enrollment_user_id     TEXT NOT NULL DEFAULT '',
	serial_number          TEXT NOT NULL DEFAULT '',
	model                  TEXT NOT NULL DEFAULT '',
	model_name             TEXT NOT NULL DEFAULT '',
	product_name           TEXT NOT NULL DEFAULT '',
	device_name            TEXT NOT NULL DEFAULT '',
	os_version             TEXT NOT NULL DEFAULT '',
	build_version          TEXT NOT NULL DEFAULT '',
	imei                   TEXT NOT NULL DEFAULT '',
	meid                   TEXT NOT NULL DEFAULT '',
	topic                  TEXT NOT NULL DEFAULT '',
	push_token             BLOB,
	push_magic             TEXT NOT NULL DEFAULT '',
	unlock_token           BLOB,
	awaiting_configuration INTEGER NOT NULL DEFAULT 0,
	bootstrap_token        BLOB,
	cert_hash              TEXT NOT NULL DEFAULT '',
	cert_not_after         INTEGER,
	enrolled               INTEGER NOT NULL DEFAULT 0,
	checked_out            INTEGER NOT NULL DEFAULT 0,
	authenticated_at       INTEGER,
	enrolled_at            INTEGER,
	last_seen              INTEGER
);

-- EnrollmentByCertHash runs on every authenticated request.
CREATE INDEX enrollments_cert_hash ON enrollments (cert_hash);

-- A command the API accepted. Its rowid doubles as the FIFO position of every
-- queue item it creates (commands are only deleted by Reset, which empties
-- the queue too, so rowids only grow while they matter).
CREATE TABLE commands (
	uuid         TEXT PRIMARY KEY,
	request_type TEXT NOT NULL DEFAULT '',
	raw          BLOB,
	created_at   INTEGER NOT NULL
);

-- One command for one enrollment. Answered items stay (with their final
-- status and result) as history; only Pending and NotNow ones are "queued".
CREATE TABLE queue (
	enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
	command_uuid  TEXT NOT NULL REFERENCES commands (uuid) ON DELETE CASCADE,
	seq           INTEGER NOT NULL,
	status        TEXT NOT NULL,
	result        BLOB,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (enrollment_id, command_uuid)
);

-- NextCommand and QueueItems: the open items of one enrollment in FIFO order,
-- without walking its answered history. Queries must repeat the WHERE term
-- verbatim for SQLite to use this partial index.
CREATE INDEX queue_open ON queue (enrollment_id, seq) WHERE status IN ('Pending', 'NotNow');

-- CommandItems, and the foreign key from queue to commands.
CREATE INDEX queue_command ON queue (command_uuid);

CREATE TABLE transcript (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	time          INTEGER,
	enrollment_id TEXT NOT NULL DEFAULT '',
	request_id    TEXT NOT NULL DEFAULT '',
	kind          TEXT NOT NULL DEFAULT '',
	message_type  TEXT NOT NULL DEFAULT '',
	command_uuid  TEXT NOT NULL DEFAULT '',
	method        TEXT NOT NULL DEFAULT '',
	path          TEXT NOT NULL DEFAULT '',
	status        INTEGER NOT NULL DEFAULT 0,
	note          TEXT NOT NULL DEFAULT '',
	request       BLOB,
	response      BLOB
);

CREATE INDEX transcript_enrollment ON transcript (enrollment_id, seq);

CREATE TABLE challenges (
	challenge  TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
