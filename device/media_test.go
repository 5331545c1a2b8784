package device_test

import (
	"testing"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// TestManagedBooks: books installed by store ID or URL are listed by
// ManagedMediaList (a URL book without an iTunesStoreID), refused with
// Apple's RejectionReason values, removed by store ID (as a string, the
// schema's type) or PersistentID, and kept by Save/Load.
func TestManagedBooks(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)
	run := func(on *device.Device, c map[string]any) (string, map[string]any) {
		t.Helper()
		return runDict(t, srv, on, c)
	}
	books := func(on *device.Device) []any {
		t.Helper()
		_, d := run(on, map[string]any{"RequestType": "ManagedMediaList"})
		return d["Books"].([]any)
	}
	if st, d := run(dev, map[string]any{"RequestType": "InstallMedia", "MediaType": "Book", "iTunesStoreID": 1234567}); st != mdm.StatusAcknowledged || d["State"] != "Managed" {
		t.Fatalf("store book: %s %v", st, d)
	}
	if st, d := run(dev, map[string]any{"RequestType": "InstallMedia", "MediaType": "Book", "MediaURL": "https://contoso.example/handbook.pdf",
		"PersistentID": "com.contoso.handbook", "Kind": "pdf", "Title": "Handbook", "Author": "IT", "Version": "2"}); st != mdm.StatusAcknowledged || d["State"] != "Managed" {
		t.Fatalf("URL book: %s %v", st, d)
	}
	for _, c := range []struct {
		cmd    map[string]any
		reason string
		status string
	}{
		{map[string]any{"RequestType": "InstallMedia", "MediaType": "Movie", "iTunesStoreID": 1}, "WrongMediaType", mdm.StatusAcknowledged},
		{map[string]any{"RequestType": "InstallMedia", "MediaType": "Book", "MediaURL": "http://x/b.pdf", "PersistentID": "p"}, "DownloadInvalid", mdm.StatusAcknowledged},
		{map[string]any{"RequestType": "InstallMedia", "MediaType": "Book"}, "", mdm.StatusCommandFormatError},
		{map[string]any{"RequestType": "InstallMedia", "MediaType": "Book", "MediaURL": "https://x/b.pdf"}, "", mdm.StatusCommandFormatError},
		{map[string]any{"RequestType": "InstallMedia", "MediaType": "Book", "iTunesStoreID": 1, "Kind": "docx"}, "", mdm.StatusCommandFormatError},
		{map[string]any{"RequestType": "InstallMedia", "iTunesStoreID": 1}, "", mdm.StatusCommandFormatError},
	} {
		st, d := run(dev, c.cmd)
		if st != c.status || (c.reason != "" && (d["RejectionReason"] != c.reason || d["State"] != "Failed")) {
			t.Errorf("%v: %s %v", c.cmd, st, d)
		}
	}
	list := books(dev)
	if len(list) != 2 {
		t.Fatalf("books %v", list)
	}
	for _, b := range list {
		e := b.(map[string]any)
		if e["PersistentID"] == "com.contoso.handbook" && (e["iTunesStoreID"] != nil || e["Title"] != "Handbook" || e["Kind"] != "pdf") {
			t.Errorf("URL book listed as %v", e)
		}
	}
	back := saveAndLoad(t, srv, dev)
	if len(books(back)) != 2 {
		t.Errorf("loaded device lists %v", books(back))
	}
	if st, _ := run(dev, map[string]any{"RequestType": "RemoveMedia", "MediaType": "Book", "iTunesStoreID": "1234567"}); st != mdm.StatusAcknowledged {
		t.Errorf("remove by store ID: %s", st)
	}
	if st, _ := run(dev, map[string]any{"RequestType": "RemoveMedia", "MediaType": "Book", "PersistentID": "com.contoso.handbook"}); st != mdm.StatusAcknowledged {
		t.Errorf("remove by PersistentID: %s", st)
	}
	if n := len(books(dev)); n != 0 {
		t.Errorf("%d books after removal", n)
	}
	r := srv.Run(dev, map[string]any{"RequestType": "RemoveMedia", "MediaType": "Book", "PersistentID": "com.contoso.handbook"})
	if r.Status != mdm.StatusError || r.ErrorChain[0].ErrorCode != device.ErrCodeMediaNotManaged {
		t.Errorf("removing a book twice: %+v", r)
	}
	for _, bad := range []map[string]any{
		{"RequestType": "RemoveMedia", "MediaType": "Book"},
		{"RequestType": "RemoveMedia", "MediaType": "Book", "iTunesStoreID": "abc"},
		{"RequestType": "RemoveMedia", "iTunesStoreID": "1"},
	} {
		if st, _ := run(dev, bad); st != mdm.StatusCommandFormatError {
			t.Errorf("%v: %s", bad, st)
		}
	}
}
