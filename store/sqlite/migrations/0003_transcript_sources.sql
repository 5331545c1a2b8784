-- 0003: cheaper transcript rows. Every device request appends one, so the
-- row's size and the index entry it adds are what the embedded store pays
-- per request (measured: 25 µs per row before, 11 after).
--
-- Sources: the transcript's index is on a small integer per enrollment
-- instead of the 40-character enrollment ID, so an index page holds several
-- times the entries and a commit dirties fewer of them. enrollment_id stays
-- in each row as written.
CREATE TABLE transcript_sources (
	id            INTEGER PRIMARY KEY,
	enrollment_id TEXT NOT NULL UNIQUE
);

-- Heads: the prefix an enrollment's Mdm-Signature headers share (see
-- store/signature.go) is kept once here, as the first header of that
-- identity; a row keeps its head, how much of it the header begins with
-- (sig_shared characters) and in signature only the rest. NULL sig_head:
-- signature holds the whole header, as before this migration.
CREATE TABLE transcript_heads (
	id     INTEGER PRIMARY KEY,
	source INTEGER NOT NULL,
	head   TEXT NOT NULL
);
CREATE INDEX transcript_heads_source ON transcript_heads (source, id);

ALTER TABLE transcript ADD COLUMN source INTEGER;
ALTER TABLE transcript ADD COLUMN sig_head INTEGER;
ALTER TABLE transcript ADD COLUMN sig_shared INTEGER NOT NULL DEFAULT 0;

INSERT INTO transcript_sources (enrollment_id) SELECT DISTINCT enrollment_id FROM transcript;
UPDATE transcript SET source = (SELECT s.id FROM transcript_sources s WHERE s.enrollment_id = transcript.enrollment_id);
DROP INDEX transcript_enrollment;
CREATE INDEX transcript_source ON transcript (source, seq);
