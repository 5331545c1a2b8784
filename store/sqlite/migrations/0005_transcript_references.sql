-- 0005: a transcript row no longer repeats what the store already keeps.
-- A command cycle's two requests carried, each a second time, the command
-- the device was sent (the Idle's response: the command as queued, byte
-- for byte) and the device's result (the acknowledgement's request: the
-- result as saved) — more than half of the transcript's bytes, which the
-- embedded store writes to its WAL and copies again at every checkpoint.
--
-- response_command: the response is the raw of this command (commands are
-- kept until Reset). request_result: the request is this final result
-- (kept until Reset, see 0004). NULL: the body is in the row, as before.
ALTER TABLE transcript ADD COLUMN response_command TEXT;
ALTER TABLE transcript ADD COLUMN request_result INTEGER;
