-- 0006: the transcript is written in blocks, one per enrollment per write.
-- A row per entry cost a command cycle two inserts, each binding nineteen
-- values and adding to the (source, seq) index at one of as many places as
-- there are devices — about 16 µs an entry on the embedded driver, a third
-- of what the SQLite store spent on a cycle beyond the memory store. The
-- entries the group writer commits together (hundreds under load) are now
-- kept as one row per enrollment, its entries encoded by blocks.go.
--
-- id: the block's first Seq. flush: the first Seq of the write that stored
-- it — the blocks of one write interleave in Seq, those of different writes
-- never, which is how a read of every enrollment finds where to start.
-- last_seq: the block's last Seq; an enrollment's blocks never interleave.
-- Entries written before 0006 stay in the transcript table and are read
-- from there (their Seqs are all lower).
CREATE TABLE transcript_blocks (
	id       INTEGER PRIMARY KEY,
	flush    INTEGER NOT NULL,
	source   INTEGER NOT NULL,
	last_seq INTEGER NOT NULL,
	entries  BLOB NOT NULL
);
CREATE INDEX transcript_blocks_source ON transcript_blocks (source, last_seq);

-- The highest Seq ever given, written by Reset: a client polling with
-- afterSeq must not see a number again after a Reset and a restart (the
-- transcript table's AUTOINCREMENT record did this for rows).
CREATE TABLE transcript_mark (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
