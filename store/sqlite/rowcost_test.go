package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkTranscriptRowShapes measures what decided the transcript's
// layout (0003_transcript_sources): a row inserted by a prepared statement
// on the embedded driver, 256 to a transaction, 64 enrollments, under
// variations of the table — with or without AUTOINCREMENT, a whole
// 2048-bit signature (1,326 bytes of DER) or the rest of it after the
// prefix an enrollment's signatures share (330 bytes), the index on the
// 40-character enrollment ID, on a small integer instead, or none.
//
//	go test ./store/sqlite -run XXX -bench TranscriptRowShapes -benchtime 20000x
func BenchmarkTranscriptRowShapes(b *testing.B) {
	for _, c := range []struct {
		name           string
		autoincrement  bool
		signatureBytes int
		index          string // "text", "integer" or ""
	}{
		{"autoincrement,whole-signature,text-index(before-0003)", true, 1326, "text"},
		{"no-autoincrement", false, 1326, "text"},
		{"signature-rest", true, 330, "text"},
		{"signature-rest,integer-index(0003)", true, 330, "integer"},
		{"signature-rest,no-index", true, 330, ""},
		{"whole-signature,no-index", true, 1326, ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchmarkRowShape(b, c.autoincrement, c.signatureBytes, c.index)
		})
	}
}

func benchmarkRowShape(b *testing.B, autoincrement bool, signatureBytes int, index string) {
	db, err := sql.Open("sqlite", "file:"+uriPath(filepath.Join(b.TempDir(), "rows.db"))+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(8000)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	auto := ""
	if autoincrement {
		auto = " AUTOINCREMENT"
	}
	schema := `CREATE TABLE transcript (seq INTEGER PRIMARY KEY` + auto + `, time INTEGER, source INTEGER,
		enrollment_id TEXT NOT NULL DEFAULT '', request_id TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '',
		message_type TEXT NOT NULL DEFAULT '', command_uuid TEXT NOT NULL DEFAULT '', method TEXT NOT NULL DEFAULT '',
		path TEXT NOT NULL DEFAULT '', status INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '',
		request BLOB, response BLOB, signature BLOB);`
	switch index {
	case "text":
		schema += "CREATE INDEX by_enrollment ON transcript (enrollment_id, seq);"
	case "integer":
		schema += "CREATE INDEX by_source ON transcript (source, seq);"
	}
	if _, err := db.Exec(schema); err != nil {
		b.Fatal(err)
	}
	insert, err := db.Prepare(`INSERT INTO transcript (seq, time, source, enrollment_id, request_id, kind, message_type,
		command_uuid, method, path, status, note, request, response, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	request := []byte(strings.Repeat("<key>Status</key><string>Idle</string>", 8))
	signature := []byte(strings.Repeat("\x30\x82\x05", signatureBytes/3+1)[:signatureBytes])
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("%040X", i*7919)
	}
	b.ResetTimer()
	for done := 0; done < b.N; {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st := tx.Stmt(insert)
		for r := 0; r < 256 && done < b.N; r++ {
			done++
			if _, err := st.Exec(done, int64(done)*1000, done%64, ids[done%64], "0123456789abcdef", "checkin", "Idle", "",
				"PUT", "/mdm/checkin", 200, "", request, nil, signature); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
