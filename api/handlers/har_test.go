package handlers

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/store"
)

// TestTranscriptExports: the transcript as JSON Lines (one API entry per
// line) and as HAR 1.2 with every field the spec requires, bodies as text
// or base64.
func TestTranscriptExports(t *testing.T) {
	e := newEnv(t)
	e.seed()
	entries := []*store.TranscriptEntry{
		{Time: testNow, EnrollmentID: idEnrolled, Kind: "checkin", MessageType: "Authenticate", Method: "PUT", Path: "/checkin", Status: 200,
			Request: []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string></dict></plist>`)},
		{Time: testNow, EnrollmentID: idEnrolled, Kind: "scep", Method: "POST", Path: "/scep?operation=PKIOperation", Status: 200,
			Request: []byte{0x30, 0x82, 0xff, 0xfe}, Response: []byte{0x30, 0x80, 0x00}},
		{Time: testNow, EnrollmentID: idEnrolled, Kind: "command", MessageType: "Idle", Method: "PUT", Path: "/mdm", Status: 403, Note: "identity bound to another enrollment"},
	}
	if err := e.st.AppendTranscript(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}

	rec := e.do(req{method: "GET", path: "/v1/enrollments/" + idEnrolled + "/transcript?format=jsonl"})
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("jsonl: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	n := 0
	for sc.Scan() {
		var te api.TranscriptEntry
		if err := json.Unmarshal(sc.Bytes(), &te); err != nil || te.EnrollmentID != idEnrolled {
			t.Fatalf("jsonl line %d: %v %q", n, err, sc.Text())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d JSON lines, want 3", n)
	}

	rec = e.do(req{method: "GET", path: "/v1/transcript?format=har"})
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Disposition"), ".har") {
		t.Fatalf("har: %d %v", rec.Code, rec.Header())
	}
	// Read it as a generic document and hold it to HAR 1.2's required fields.
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	log, _ := doc["log"].(map[string]any)
	if log["version"] != "1.2" || log["creator"] == nil {
		t.Fatalf("log %v", log)
	}
	list, _ := log["entries"].([]any)
	if len(list) != 3 {
		t.Fatalf("%d HAR entries", len(list))
	}
	for i, it := range list {
		en := it.(map[string]any)
		for _, k := range []string{"startedDateTime", "time", "request", "response", "cache", "timings"} {
			if _, ok := en[k]; !ok {
				t.Fatalf("entry %d lacks %s", i, k)
			}
		}
		rq := en["request"].(map[string]any)
		for _, k := range []string{"method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize", "bodySize"} {
			if _, ok := rq[k]; !ok {
				t.Fatalf("entry %d request lacks %s", i, k)
			}
		}
		rs := en["response"].(map[string]any)
		for _, k := range []string{"status", "statusText", "httpVersion", "cookies", "headers", "content", "redirectURL", "headersSize", "bodySize"} {
			if _, ok := rs[k]; !ok {
				t.Fatalf("entry %d response lacks %s", i, k)
			}
		}
		if !strings.HasPrefix(rq["url"].(string), "https://mdm.test/") {
			t.Fatalf("entry %d url %v is not absolute", i, rq["url"])
		}
	}
	scep := list[1].(map[string]any)
	pd := scep["request"].(map[string]any)["postData"].(map[string]any)
	if pd["encoding"] != "base64" || pd["text"] != base64.StdEncoding.EncodeToString([]byte{0x30, 0x82, 0xff, 0xfe}) {
		t.Fatalf("binary body %v", pd)
	}
	if q := scep["request"].(map[string]any)["queryString"].([]any); len(q) != 1 {
		t.Fatalf("queryString %v", q)
	}
	if c := list[2].(map[string]any)["comment"].(string); !strings.Contains(c, "identity bound") {
		t.Fatalf("the rule that fired is not in the comment: %q", c)
	}

	if rec := e.do(req{method: "GET", path: "/v1/transcript?format=pcap"}); rec.Code != 400 || !strings.Contains(rec.Body.String(), "jsonl or har") {
		t.Fatalf("bad format: %d %s", rec.Code, rec.Body.String())
	}
}
