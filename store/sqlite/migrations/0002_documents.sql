-- Enrollment programs (ADE, BYOD, Configurator) record how an enrollment came
-- about; kept as one JSON column so new fields need no migration.
ALTER TABLE enrollments ADD COLUMN management TEXT NOT NULL DEFAULT '{}';

-- Small JSON records of the enrollment programs: ADE state, the organisation
-- directory, enrollment type profiles, enrollment tickets.
CREATE TABLE documents (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	data       BLOB,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
);

-- The request's Mdm-Signature header, so the transcript can explain who
-- signed each message and whether it verified.
ALTER TABLE transcript ADD COLUMN signature TEXT NOT NULL DEFAULT '';
