-- 0004: a command's result is appended to a table of its own instead of
-- being written into its queue row. A queue row is small until its result
-- arrives; growing it in place by a kilobyte or more rewrote the page it
-- sits on, and split it, for every result — a command cycle's commit wrote
-- more than two WAL frames per result (measured). Appended, the results of
-- one commit share the table's last pages, and a queue row changes only in
-- its status, result_id and time.
--
-- A queue row answered before this migration keeps its result in
-- queue.result; one answered after has queue.result NULL and result_id set.
-- Readers take whichever is there.
CREATE TABLE results (
	id     INTEGER PRIMARY KEY,
	result BLOB NOT NULL
);

ALTER TABLE queue ADD COLUMN result_id INTEGER;

-- A result replaced (a NotNow answer, then the final one) goes. So does a
-- result that is not final when its queue row is deleted (ClearQueue). A
-- final result stays when its row goes — only an enrollment's removal does
-- that — because the transcript may refer to it (0005); Reset empties both
-- tables.
CREATE TRIGGER queue_result_replaced AFTER UPDATE OF result_id ON queue
	WHEN OLD.result_id IS NOT NULL AND OLD.result_id IS NOT NEW.result_id
BEGIN
	DELETE FROM results WHERE id = OLD.result_id;
END;

CREATE TRIGGER queue_result_deleted AFTER DELETE ON queue
	WHEN OLD.result_id IS NOT NULL AND OLD.status IN ('Pending', 'NotNow')
BEGIN
	DELETE FROM results WHERE id = OLD.result_id;
END;
