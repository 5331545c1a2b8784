// Package storetest is the battery of tests every store.Store backend passes,
// so that the backends (memory for tests, SQLite by default, later a shared
// one) stay interchangeable: the server must not be able to tell them apart.
//
// A backend's own test calls Run with a constructor; a backend that persists
// also calls RunDurability.
//
// Where the contract in package store leaves a choice, the battery fixes one
// so that backends agree:
//   - Enqueue to an enrollment that does not exist fails as a whole with an
//     error that is ErrNotFound and carries HTTP 404; naming an enrollment
//     twice queues the command once; a zero CreatedAt is stamped with now.
//   - FIFO order is the order of Enqueue calls, not of CreatedAt.
//   - SaveResult for a command that already has a final answer (a device
//     retry) is ErrNotFound and changes nothing: the first answer stands.
//     A status that is not NotNow or final is an error, not ErrNotFound.
//   - QueueItems of an unknown enrollment is empty, not an error; CommandItems
//     is ordered by enrollment ID; a command whose items were all cleared
//     still exists (an empty list).
//   - ClearQueue keeps answered items as history.
//   - AppendTranscript sets Seq on the caller's entries, and Seq keeps
//     increasing across Reset.
//   - A challenge is expired at its expiry instant (now must be before it).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store"
)

// base is the epoch of the battery's clock. Times carry microseconds (and not
// nanoseconds) because microsecond precision is all the contract asks a
// backend to keep; the location is not UTC so a backend that forgets to
// normalise is caught.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.FixedZone("UTC+2", 2*3600))

func at(n int) time.Time { return base.Add(time.Duration(n) * (time.Second + time.Microsecond)) }

// Run runs the battery against stores made by newStore. Each subtest gets a
// fresh, empty store and closes it when done (Close must tolerate being called
// again by the constructor's own cleanup).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"EnrollmentRoundTrip", testEnrollmentRoundTrip},
		{"EnrollmentReplace", testEnrollmentReplace},
		{"EnrollmentAliasing", testEnrollmentAliasing},
		{"ListEnrollments", testListEnrollments},
		{"EnrollmentByCertHash", testEnrollmentByCertHash},
		{"TouchEnrollment", testTouchEnrollment},
		{"EnrollmentBinding", testEnrollmentBinding},
		{"NotFound", testNotFound},
		{"EnqueueValidation", testEnqueueValidation},
		{"EnqueueDefaultsCreatedAt", testEnqueueDefaultsCreatedAt},
		{"FIFO", testFIFO},
		{"FanOutIndependent", testFanOutIndependent},
		{"NotNow", testNotNow},
		{"FinalStatuses", testFinalStatuses},
		{"SaveResultValidation", testSaveResultValidation},
		{"SaveResultRetry", testSaveResultRetry},
		{"QueueAliasing", testQueueAliasing},
		{"PutEnrollmentKeepsQueue", testPutEnrollmentKeepsQueue},
		{"ClearQueue", testClearQueue},
		{"Transcript", testTranscript},
		{"Challenges", testChallenges},
		{"Documents", testDocuments},
		{"Concurrency", testConcurrency},
		{"Reset", testReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// RunDurability checks that what a store acknowledged survives Close and a
// reopen of the same directory. open is called twice with the same dir.
func RunDurability(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	ctx := context.Background()
	dir := t.TempDir()

	s := open(t, dir)
	e1, e2 := fullEnrollment("dur-1"), fullEnrollment("dur-2")
	e2.CertHash = "feedface"
	mustPut(t, s, e1, e2)
	cmds := []*store.Command{cmd("D1", 0), cmd("D2", 1), cmd("D3", 2)}
	for _, c := range cmds {
		if err := s.Enqueue(ctx, c, "dur-1", "dur-2"); err != nil {
			t.Fatalf("Enqueue %s: %v", c.UUID, err)
		}
	}
	mustSave(t, s, "dur-1", "D1", store.CommandAcknowledged, []byte("ack-D1"), at(10))
	mustSave(t, s, "dur-1", "D2", store.CommandNotNow, []byte("notnow-D2"), at(11))
	mustSave(t, s, "dur-2", "D3", store.CommandError, []byte("error-D3"), at(12))
	if err := s.TouchEnrollment(ctx, "dur-2", at(13)); err != nil {
		t.Fatal(err)
	}
	e2.LastSeen = at(13)
	entries := []*store.TranscriptEntry{transcriptEntry("dur-1", 0), transcriptEntry("dur-2", 1), transcriptEntry("", 2)}
	if err := s.AppendTranscript(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, "durable-challenge", at(1000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, dir)
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close after reopen: %v", err)
		}
	}()
	for _, want := range []*store.Enrollment{e1, e2} {
		got, err := s.GetEnrollment(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetEnrollment %s after reopen: %v", want.ID, err)
		}
		expectSame(t, "enrollment "+want.ID, got, want)
	}
	if got, err := s.EnrollmentByCertHash(ctx, "feedface"); err != nil || got.ID != "dur-2" {
		t.Errorf("EnrollmentByCertHash after reopen: %v, %v", got, err)
	}
	expectQueue(t, s, "dur-1", "D2:NotNow", "D3:Pending")
	expectQueue(t, s, "dur-2", "D1:Pending", "D2:Pending")
	items, err := s.CommandItems(ctx, "D1")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].Status != store.CommandAcknowledged || string(items[0].Result) != "ack-D1" ||
		!items[0].UpdatedAt.Equal(at(10)) || !bytes.Equal(items[0].Command, cmds[0].Raw) {
		t.Errorf("CommandItems(D1) after reopen: %s", describeItems(items))
	}
	next, err := s.NextCommand(ctx, "dur-1", false)
	if err != nil || next.CommandUUID != "D2" || string(next.Result) != "notnow-D2" {
		t.Errorf("NextCommand after reopen: %+v, %v", next, err)
	}
	items, err = s.CommandItems(ctx, "D3")
	if err != nil || len(items) != 2 || items[1].Status != store.CommandError || string(items[1].Result) != "error-D3" {
		t.Errorf("CommandItems(D3) after reopen: %s, %v", describeItems(items), err)
	}
	got, err := s.Transcript(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("transcript after reopen has %d entries, want %d", len(got), len(entries))
	}
	for i := range entries {
		expectSame(t, fmt.Sprintf("transcript[%d]", i), got[i], entries[i])
	}
	more := transcriptEntry("dur-1", 3)
	if err := s.AppendTranscript(ctx, more); err != nil {
		t.Fatal(err)
	}
	if more.Seq <= entries[2].Seq {
		t.Errorf("Seq after reopen %d, want > %d", more.Seq, entries[2].Seq)
	}
	if ok, err := s.ConsumeChallenge(ctx, "durable-challenge", at(999)); err != nil || !ok {
		t.Errorf("challenge after reopen: %v, %v", ok, err)
	}
	// A command UUID is still taken after reopen.
	if err := s.Enqueue(ctx, cmd("D1", 5), "dur-1"); httpStatus(err) != 409 {
		t.Errorf("re-Enqueue of D1 after reopen: %v, want a 409", err)
	}
}

// --- fixtures -------------------------------------------------------------

// fullEnrollment returns a record with every field set to a distinct
// non-zero value, by reflection, so that a field added to store.Enrollment
// later is covered without touching the battery.
func fullEnrollment(id string) *store.Enrollment {
	e := &store.Enrollment{}
	fill(reflect.ValueOf(e).Elem(), id)
	e.ID = id
	return e
}

func fill(v reflect.Value, seed string) {
	timeType := reflect.TypeFor[time.Time]()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(at(1000 + 17*i)))
		case f.Kind() == reflect.String:
			f.SetString(seed + "-" + name)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(int64(200 + i))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			// Include a zero byte and bytes that are not UTF-8.
			f.SetBytes([]byte{0, 0xff, 0xfe, byte(i), 'x'})
		case f.Kind() == reflect.Struct:
			fill(f, seed+"-"+name)
		default:
			panic("storetest: fill does not know field " + name)
		}
	}
}

func cmd(uuid string, n int) *store.Command {
	return &store.Command{
		UUID:        uuid,
		RequestType: "DeviceInformation",
		Raw:         []byte("<plist>" + uuid + "\x00\xff</plist>"),
		CreatedAt:   at(n),
	}
}

func transcriptEntry(enrollmentID string, n int) *store.TranscriptEntry {
	return &store.TranscriptEntry{
		Time:         at(n),
		EnrollmentID: enrollmentID,
		RequestID:    fmt.Sprintf("req-%d", n),
		Kind:         "checkin",
		MessageType:  "TokenUpdate",
		CommandUUID:  fmt.Sprintf("cmd-%d", n),
		Method:       "PUT",
		Path:         "/mdm/checkin",
		Status:       200 + n,
		Note:         fmt.Sprintf("note %d", n),
		Request:      []byte(fmt.Sprintf("request %d \x00\xff", n)),
		Response:     []byte(fmt.Sprintf("response %d", n)),
	}
}

// --- helpers --------------------------------------------------------------

func mustPut(t *testing.T, s store.Store, es ...*store.Enrollment) {
	t.Helper()
	for _, e := range es {
		if err := s.PutEnrollment(context.Background(), e); err != nil {
			t.Fatalf("PutEnrollment %s: %v", e.ID, err)
		}
	}
}

func mustEnroll(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		mustPut(t, s, &store.Enrollment{ID: id, Type: "Device", DeviceID: id})
	}
}

func mustEnqueue(t *testing.T, s store.Store, c *store.Command, ids ...string) {
	t.Helper()
	if err := s.Enqueue(context.Background(), c, ids...); err != nil {
		t.Fatalf("Enqueue %s to %v: %v", c.UUID, ids, err)
	}
}

func mustSave(t *testing.T, s store.Store, id, uuid, status string, raw []byte, when time.Time) {
	t.Helper()
	if err := s.SaveResult(context.Background(), id, uuid, status, raw, when); err != nil {
		t.Fatalf("SaveResult(%s, %s, %s): %v", id, uuid, status, err)
	}
}

func mustNext(t *testing.T, s store.Store, id string, skipNotNow bool, wantUUID string) *store.QueueItem {
	t.Helper()
	it, err := s.NextCommand(context.Background(), id, skipNotNow)
	if err != nil {
		t.Fatalf("NextCommand(%s, skipNotNow=%v): %v, want %s", id, skipNotNow, err, wantUUID)
	}
	if it.CommandUUID != wantUUID {
		t.Fatalf("NextCommand(%s, skipNotNow=%v) = %s, want %s", id, skipNotNow, it.CommandUUID, wantUUID)
	}
	return it
}

func expectNoNext(t *testing.T, s store.Store, id string, skipNotNow bool) {
	t.Helper()
	it, err := s.NextCommand(context.Background(), id, skipNotNow)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("NextCommand(%s, skipNotNow=%v) = %s, %v; want ErrNotFound", id, skipNotNow, describeItem(it), err)
	}
}

func expectNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: got %v, want an error that is store.ErrNotFound", what, err)
	}
}

// expectQueue checks QueueItems(id) against "UUID:Status" strings, in order.
func expectQueue(t *testing.T, s store.Store, id string, want ...string) []*store.QueueItem {
	t.Helper()
	items, err := s.QueueItems(context.Background(), id)
	if err != nil {
		t.Fatalf("QueueItems(%s): %v", id, err)
	}
	got := make([]string, len(items))
	for i, it := range items {
		got[i] = it.CommandUUID + ":" + it.Status
		if it.EnrollmentID != id {
			t.Errorf("QueueItems(%s)[%d].EnrollmentID = %q", id, i, it.EnrollmentID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("QueueItems(%s) = %v, want %v", id, got, want)
	}
	return items
}

// expectCommandItems checks CommandItems(uuid) against "EnrollmentID:Status"
// strings, ordered by enrollment ID.
func expectCommandItems(t *testing.T, s store.Store, uuid string, want ...string) []*store.QueueItem {
	t.Helper()
	items, err := s.CommandItems(context.Background(), uuid)
	if err != nil {
		t.Fatalf("CommandItems(%s): %v", uuid, err)
	}
	got := make([]string, len(items))
	for i, it := range items {
		got[i] = it.EnrollmentID + ":" + it.Status
		if it.CommandUUID != uuid {
			t.Errorf("CommandItems(%s)[%d].CommandUUID = %q", uuid, i, it.CommandUUID)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("CommandItems(%s) = %v, want %v", uuid, got, want)
	}
	return items
}

func describeItem(it *store.QueueItem) string {
	if it == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%s %s %s result=%q}", it.EnrollmentID, it.CommandUUID, it.Status, it.Result)
}

func describeItems(items []*store.QueueItem) string {
	var b bytes.Buffer
	for _, it := range items {
		b.WriteString(describeItem(it))
	}
	return b.String()
}

// httpStatus returns the status an error carries, or 0.
func httpStatus(err error) int {
	var h interface{ HTTPStatus() int }
	if errors.As(err, &h) {
		return h.HTTPStatus()
	}
	return 0
}

// expectSame compares two records of the same struct type field by field:
// times with Equal (and they must come back in UTC), byte slices with
// bytes.Equal (nil and empty are the same), the rest with ==.
func expectSame(t *testing.T, what string, got, want any) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("%s: %s", what, d)
	}
}

func diff(got, want any) []string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	if gv.Kind() == reflect.Pointer {
		if gv.IsNil() || wv.IsNil() {
			if gv.IsNil() != wv.IsNil() {
				return []string{fmt.Sprintf("got %v, want %v", got, want)}
			}
			return nil
		}
		gv, wv = gv.Elem(), wv.Elem()
	}
	var out []string
	timeType := reflect.TypeFor[time.Time]()
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i), wv.Field(i)
		switch {
		case g.Type() == timeType:
			gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
			if !gt.Equal(wt) {
				out = append(out, fmt.Sprintf("%s = %v, want %v", name, gt, wt))
			} else if !gt.IsZero() && gt.Location() != time.UTC {
				out = append(out, fmt.Sprintf("%s = %v is not in UTC", name, gt))
			}
		case g.Kind() == reflect.Slice && g.Type().Elem().Kind() == reflect.Uint8:
			if !bytes.Equal(g.Bytes(), w.Bytes()) {
				out = append(out, fmt.Sprintf("%s = %q, want %q", name, g.Bytes(), w.Bytes()))
			}
		default:
			if !reflect.DeepEqual(g.Interface(), w.Interface()) {
				out = append(out, fmt.Sprintf("%s = %#v, want %#v", name, g.Interface(), w.Interface()))
			}
		}
	}
	return out
}

// --- enrollments ----------------------------------------------------------

func testEnrollmentRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	full := fullEnrollment("udid-full")
	// Only an ID: every other field must come back zero, not e.g. a zero
	// time that is not IsZero or a false that was stored as NULL and lost.
	bare := &store.Enrollment{ID: "udid-bare"}
	mustPut(t, s, full, bare)
	for _, want := range []*store.Enrollment{full, bare} {
		got, err := s.GetEnrollment(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetEnrollment %s: %v", want.ID, err)
		}
		expectSame(t, want.ID, got, want)
		if !got.LastSeen.IsZero() && want.LastSeen.IsZero() {
			t.Errorf("%s: zero LastSeen came back as %v", want.ID, got.LastSeen)
		}
	}
	// A time with nanoseconds keeps at least its microseconds.
	ns := &store.Enrollment{ID: "udid-ns", LastSeen: time.Date(2030, 1, 2, 3, 4, 5, 987654321, time.UTC)}
	mustPut(t, s, ns)
	got, err := s.GetEnrollment(ctx, ns.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.LastSeen.Sub(ns.LastSeen); d > 0 || d <= -time.Microsecond {
		t.Errorf("LastSeen %v came back as %v: lost more than sub-microsecond precision", ns.LastSeen, got.LastSeen)
	}
}

func testEnrollmentReplace(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPut(t, s, fullEnrollment("udid-1"))
	// Replacing clears what the new record leaves zero.
	repl := &store.Enrollment{ID: "udid-1", Type: "User", DeviceID: "udid-0", SerialNumber: "NEW"}
	mustPut(t, s, repl)
	got, err := s.GetEnrollment(ctx, "udid-1")
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, "replaced", got, repl)
	list, err := s.ListEnrollments(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListEnrollments after replace: %d records, %v", len(list), err)
	}
	// A record needs an ID.
	if err := s.PutEnrollment(ctx, &store.Enrollment{Type: "Device"}); err == nil {
		t.Error("PutEnrollment without an ID succeeded")
	}
	if err := s.PutEnrollment(ctx, nil); err == nil {
		t.Error("PutEnrollment(nil) succeeded")
	}
}

func testEnrollmentAliasing(t *testing.T, s store.Store) {
	ctx := context.Background()
	e := fullEnrollment("udid-alias")
	want := fullEnrollment("udid-alias")
	mustPut(t, s, e)
	// The caller's record is theirs: changing it after Put changes nothing.
	e.PushToken[0] = 'X'
	e.UnlockToken[0] = 'X'
	e.BootstrapToken[0] = 'X'
	e.SerialNumber = "changed"
	got, err := s.GetEnrollment(ctx, "udid-alias")
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, "after mutating the input", got, want)
	// Nor does changing what Get returned.
	got.PushToken[0] = 'Y'
	got.BootstrapToken[0] = 'Y'
	got.Enrolled = false
	again, err := s.GetEnrollment(ctx, "udid-alias")
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, "after mutating the output", again, want)
	list, err := s.ListEnrollments(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListEnrollments: %v %v", list, err)
	}
	list[0].PushToken[0] = 'Z'
	byHash, err := s.EnrollmentByCertHash(ctx, want.CertHash)
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, "after mutating a listed record", byHash, want)
}

func testListEnrollments(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.ListEnrollments(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListEnrollments of an empty store: %v, %v", list, err)
	}
	ids := []string{"m", "b", "z", "a:user", "a"}
	for _, id := range ids {
		mustPut(t, s, fullEnrollment(id))
	}
	list, err = s.ListEnrollments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(list))
	for i, e := range list {
		got[i] = e.ID
		expectSame(t, "listed "+e.ID, e, fullEnrollment(e.ID))
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("ListEnrollments order %v, want %v", got, ids)
	}
}

func testEnrollmentByCertHash(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := fullEnrollment("dev-a"), fullEnrollment("dev-b")
	a.CertHash, b.CertHash = "aaaa", "bbbb"
	user := &store.Enrollment{ID: "dev-a:user", Type: "User", DeviceID: "dev-a"}
	mustPut(t, s, a, b, user)
	for hash, id := range map[string]string{"aaaa": "dev-a", "bbbb": "dev-b"} {
		got, err := s.EnrollmentByCertHash(ctx, hash)
		if err != nil {
			t.Fatalf("EnrollmentByCertHash(%s): %v", hash, err)
		}
		if got.ID != id {
			t.Errorf("EnrollmentByCertHash(%s) = %s, want %s", hash, got.ID, id)
		}
	}
	// A user channel has no hash; the empty hash matches nothing.
	_, err := s.EnrollmentByCertHash(ctx, "")
	expectNotFound(t, "EnrollmentByCertHash(\"\")", err)
	// Re-binding to a new certificate forgets the old hash.
	a.CertHash = "cccc"
	mustPut(t, s, a)
	_, err = s.EnrollmentByCertHash(ctx, "aaaa")
	expectNotFound(t, "EnrollmentByCertHash of a replaced hash", err)
	if got, err := s.EnrollmentByCertHash(ctx, "cccc"); err != nil || got.ID != "dev-a" {
		t.Errorf("EnrollmentByCertHash(cccc) = %v, %v", got, err)
	}
}

func testTouchEnrollment(t *testing.T, s store.Store) {
	ctx := context.Background()
	e := fullEnrollment("udid-touch")
	mustPut(t, s, e)
	if err := s.TouchEnrollment(ctx, "udid-touch", at(5000)); err != nil {
		t.Fatal(err)
	}
	e.LastSeen = at(5000)
	got, err := s.GetEnrollment(ctx, "udid-touch")
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, "touched", got, e)
	expectNotFound(t, "TouchEnrollment of an unknown ID", s.TouchEnrollment(ctx, "nobody", at(1)))
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetEnrollment(ctx, "nobody")
	expectNotFound(t, "GetEnrollment", err)
	_, err = s.EnrollmentByCertHash(ctx, "0123")
	expectNotFound(t, "EnrollmentByCertHash", err)
	_, err = s.CommandItems(ctx, "no-such-command")
	expectNotFound(t, "CommandItems", err)
	_, err = s.NextCommand(ctx, "nobody", false)
	expectNotFound(t, "NextCommand of an unknown enrollment", err)

	mustEnroll(t, s, "e1", "e2")
	expectNoNext(t, s, "e1", false)
	expectNoNext(t, s, "e1", true)
	expectNotFound(t, "SaveResult of an unknown command",
		s.SaveResult(ctx, "e1", "no-such-command", store.CommandAcknowledged, []byte("x"), at(1)))
	mustEnqueue(t, s, cmd("C1", 1), "e1")
	expectNotFound(t, "SaveResult of a command queued for another enrollment",
		s.SaveResult(ctx, "e2", "C1", store.CommandAcknowledged, []byte("x"), at(1)))
	expectNotFound(t, "SaveResult for an unknown enrollment",
		s.SaveResult(ctx, "nobody", "C1", store.CommandAcknowledged, []byte("x"), at(1)))
	// None of that touched C1 on e1.
	expectQueue(t, s, "e1", "C1:Pending")
	expectCommandItems(t, s, "C1", "e1:Pending")
	if items, err := s.QueueItems(ctx, "nobody"); err != nil || len(items) != 0 {
		t.Errorf("QueueItems of an unknown enrollment: %v, %v; want empty, nil", items, err)
	}
}

// --- queue ----------------------------------------------------------------

func testEnqueueValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustEnroll(t, s, "e1", "e2")

	if err := s.Enqueue(ctx, cmd("C0", 0)); err == nil || httpStatus(err) != 400 {
		t.Errorf("Enqueue to no enrollment: %v, want an error with HTTPStatus 400", err)
	}
	if err := s.Enqueue(ctx, cmd("", 0), "e1"); err == nil || httpStatus(err) != 400 {
		t.Errorf("Enqueue without a UUID: %v, want an error with HTTPStatus 400", err)
	}
	if err := s.Enqueue(ctx, nil, "e1"); err == nil || httpStatus(err) != 400 {
		t.Errorf("Enqueue of nil: %v, want an error with HTTPStatus 400", err)
	}

	mustEnqueue(t, s, cmd("C1", 1), "e1")
	for _, ids := range [][]string{{"e1"}, {"e2"}, {"e1", "e2"}} {
		err := s.Enqueue(ctx, cmd("C1", 2), ids...)
		if err == nil || httpStatus(err) != 409 {
			t.Errorf("Enqueue of a duplicate UUID to %v: %v, want an error with HTTPStatus 409", ids, err)
		}
	}
	// The duplicate changed nothing: e1 holds the first C1 once, e2 nothing.
	items := expectQueue(t, s, "e1", "C1:Pending")
	if !items[0].CreatedAt.Equal(at(1)) {
		t.Errorf("duplicate Enqueue changed the command: CreatedAt %v", items[0].CreatedAt)
	}
	expectQueue(t, s, "e2")

	// An unknown enrollment fails the whole Enqueue: nothing is queued for
	// the known one, and the UUID stays free.
	err := s.Enqueue(ctx, cmd("C2", 3), "e2", "nobody")
	if !errors.Is(err, store.ErrNotFound) || httpStatus(err) != 404 {
		t.Errorf("Enqueue to an unknown enrollment: %v, want ErrNotFound with HTTPStatus 404", err)
	}
	expectQueue(t, s, "e2")
	_, err = s.CommandItems(ctx, "C2")
	expectNotFound(t, "CommandItems of a command whose Enqueue failed", err)
	mustEnqueue(t, s, cmd("C2", 3), "e2")

	// Naming an enrollment twice queues the command once.
	mustEnqueue(t, s, cmd("C3", 4), "e2", "e2")
	expectQueue(t, s, "e2", "C2:Pending", "C3:Pending")
}

func testEnqueueDefaultsCreatedAt(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	before := time.Now().Add(-time.Second)
	c := cmd("C1", 0)
	c.CreatedAt = time.Time{}
	mustEnqueue(t, s, c, "e1")
	it := mustNext(t, s, "e1", false, "C1")
	if it.CreatedAt.Before(before) || it.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("a command with no CreatedAt was stamped %v, want about now", it.CreatedAt)
	}
}

func testFIFO(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	// CreatedAt runs backwards on purpose: order is the order of Enqueue.
	var want []string
	for i := range 6 {
		c := cmd(fmt.Sprintf("C%d", i), 100-i)
		c.RequestType = fmt.Sprintf("Type%d", i)
		mustEnqueue(t, s, c, "e1")
		want = append(want, c.UUID+":Pending")
	}
	items := expectQueue(t, s, "e1", want...)
	for i, it := range items {
		wantItem := &store.QueueItem{
			EnrollmentID: "e1", CommandUUID: fmt.Sprintf("C%d", i), RequestType: fmt.Sprintf("Type%d", i),
			Status: store.CommandPending, CreatedAt: at(100 - i), UpdatedAt: it.UpdatedAt,
			Command: cmd(fmt.Sprintf("C%d", i), 0).Raw,
		}
		expectSame(t, fmt.Sprintf("QueueItems[%d]", i), it, wantItem)
		if len(it.Result) != 0 {
			t.Errorf("QueueItems[%d] has a result before any answer: %q", i, it.Result)
		}
	}
	for i := range 6 {
		uuid := fmt.Sprintf("C%d", i)
		it := mustNext(t, s, "e1", i%2 == 0, uuid)
		if !bytes.Equal(it.Command, cmd(uuid, 0).Raw) || it.RequestType != fmt.Sprintf("Type%d", i) ||
			it.Status != store.CommandPending || !it.CreatedAt.Equal(at(100-i)) {
			t.Errorf("NextCommand = %s %q %q %v", describeItem(it), it.RequestType, it.Command, it.CreatedAt)
		}
		// Asking again without answering gives the same command.
		mustNext(t, s, "e1", false, uuid)
		mustSave(t, s, "e1", uuid, store.CommandAcknowledged, []byte("ok "+uuid), at(200+i))
	}
	expectNoNext(t, s, "e1", false)
	expectQueue(t, s, "e1")
}

func testFanOutIndependent(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1", "e2", "e3")
	mustEnqueue(t, s, cmd("C1", 1), "e3", "e1", "e2")
	mustEnqueue(t, s, cmd("C2", 2), "e1", "e2", "e3")

	mustSave(t, s, "e1", "C1", store.CommandAcknowledged, []byte("e1 ack"), at(10))
	mustSave(t, s, "e2", "C1", store.CommandNotNow, []byte("e2 notnow"), at(11))

	expectQueue(t, s, "e1", "C2:Pending")
	expectQueue(t, s, "e2", "C1:NotNow", "C2:Pending")
	expectQueue(t, s, "e3", "C1:Pending", "C2:Pending")
	mustNext(t, s, "e1", false, "C2")
	mustNext(t, s, "e2", true, "C2")
	mustNext(t, s, "e2", false, "C1")
	mustNext(t, s, "e3", true, "C1")

	items := expectCommandItems(t, s, "C1", "e1:Acknowledged", "e2:NotNow", "e3:Pending")
	if string(items[0].Result) != "e1 ack" || !items[0].UpdatedAt.Equal(at(10)) ||
		string(items[1].Result) != "e2 notnow" || !items[1].UpdatedAt.Equal(at(11)) || len(items[2].Result) != 0 {
		t.Errorf("CommandItems(C1) = %s", describeItems(items))
	}
	for _, it := range items {
		if !bytes.Equal(it.Command, cmd("C1", 0).Raw) || it.RequestType != "DeviceInformation" || !it.CreatedAt.Equal(at(1)) {
			t.Errorf("CommandItems(C1) item %s: command %q %q %v", it.EnrollmentID, it.Command, it.RequestType, it.CreatedAt)
		}
	}
	expectCommandItems(t, s, "C2", "e1:Pending", "e2:Pending", "e3:Pending")
}

func testNotNow(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	mustEnqueue(t, s, cmd("A", 1), "e1")
	mustEnqueue(t, s, cmd("B", 2), "e1")

	mustNext(t, s, "e1", false, "A")
	mustSave(t, s, "e1", "A", store.CommandNotNow, []byte("notnow A"), at(10))
	// Within the session A is skipped; a new session offers it again.
	mustNext(t, s, "e1", true, "B")
	it := mustNext(t, s, "e1", false, "A")
	if it.Status != store.CommandNotNow || string(it.Result) != "notnow A" || !it.UpdatedAt.Equal(at(10)) {
		t.Errorf("NotNow'd item = %s updated %v", describeItem(it), it.UpdatedAt)
	}
	items := expectQueue(t, s, "e1", "A:NotNow", "B:Pending")
	if string(items[0].Result) != "notnow A" {
		t.Errorf("QueueItems keeps the NotNow answer: got %q", items[0].Result)
	}

	// NotNow again, then B too: nothing left for this session.
	mustSave(t, s, "e1", "A", store.CommandNotNow, []byte("notnow A again"), at(11))
	mustSave(t, s, "e1", "B", store.CommandNotNow, []byte("notnow B"), at(12))
	expectNoNext(t, s, "e1", true)
	expectQueue(t, s, "e1", "A:NotNow", "B:NotNow")
	it = mustNext(t, s, "e1", false, "A")
	if string(it.Result) != "notnow A again" {
		t.Errorf("second NotNow result = %q", it.Result)
	}

	// A NotNow'd command can still be answered finally.
	mustSave(t, s, "e1", "A", store.CommandError, []byte("error A"), at(13))
	mustNext(t, s, "e1", false, "B")
	expectNoNext(t, s, "e1", true)
	mustSave(t, s, "e1", "B", store.CommandAcknowledged, []byte("ack B"), at(14))
	expectNoNext(t, s, "e1", false)
	expectQueue(t, s, "e1")
	items = expectCommandItems(t, s, "A", "e1:Error")
	if string(items[0].Result) != "error A" || !items[0].UpdatedAt.Equal(at(13)) {
		t.Errorf("A after Error: %s", describeItems(items))
	}
}

func testFinalStatuses(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	finals := []string{store.CommandAcknowledged, store.CommandError, store.CommandCommandFormatError}
	for i, status := range finals {
		uuid := "C-" + status
		mustEnqueue(t, s, cmd(uuid, i), "e1")
		mustEnqueue(t, s, cmd(uuid+"-after", i), "e1")
		mustSave(t, s, "e1", uuid, status, []byte("raw "+status), at(50+i))
		expectQueue(t, s, "e1", uuid+"-after:Pending")
		mustNext(t, s, "e1", false, uuid+"-after")
		items := expectCommandItems(t, s, uuid, "e1:"+status)
		if string(items[0].Result) != "raw "+status || !items[0].UpdatedAt.Equal(at(50+i)) || !items[0].CreatedAt.Equal(at(i)) {
			t.Errorf("%s: CommandItems = %s, updated %v", status, describeItems(items), items[0].UpdatedAt)
		}
		mustSave(t, s, "e1", uuid+"-after", store.CommandAcknowledged, nil, at(60))
	}
	expectNoNext(t, s, "e1", false)
}

func testSaveResultValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustEnroll(t, s, "e1")
	mustEnqueue(t, s, cmd("C1", 1), "e1")
	for _, status := range []string{"Idle", "", "Pending", "acknowledged", "Bogus"} {
		err := s.SaveResult(ctx, "e1", "C1", status, []byte("x"), at(2))
		if err == nil {
			t.Errorf("SaveResult with status %q succeeded", status)
		} else if errors.Is(err, store.ErrNotFound) {
			t.Errorf("SaveResult with status %q: %v; a bad status is not a missing command", status, err)
		}
	}
	items := expectQueue(t, s, "e1", "C1:Pending")
	if len(items[0].Result) != 0 {
		t.Errorf("a refused result was kept: %q", items[0].Result)
	}
}

func testSaveResultRetry(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustEnroll(t, s, "e1")
	mustEnqueue(t, s, cmd("C1", 1), "e1")
	mustEnqueue(t, s, cmd("C2", 2), "e1")
	mustSave(t, s, "e1", "C1", store.CommandAcknowledged, []byte("first"), at(10))
	// The device did not get our answer and sends its result again, or sends
	// something else about the same command: the first final answer stands
	// and the command does not come back.
	for i, status := range []string{store.CommandAcknowledged, store.CommandNotNow, store.CommandError} {
		err := s.SaveResult(ctx, "e1", "C1", status, []byte("retry"), at(20+i))
		expectNotFound(t, "SaveResult of an answered command ("+status+")", err)
	}
	items := expectCommandItems(t, s, "C1", "e1:Acknowledged")
	if string(items[0].Result) != "first" || !items[0].UpdatedAt.Equal(at(10)) {
		t.Errorf("after retries: %s updated %v", describeItems(items), items[0].UpdatedAt)
	}
	expectQueue(t, s, "e1", "C2:Pending")
	mustNext(t, s, "e1", false, "C2")
}

func testQueueAliasing(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	c := cmd("C1", 1)
	mustEnqueue(t, s, c, "e1")
	c.Raw[0] = 'X'
	c.RequestType = "changed"
	it := mustNext(t, s, "e1", false, "C1")
	if !bytes.Equal(it.Command, cmd("C1", 0).Raw) || it.RequestType != "DeviceInformation" {
		t.Fatalf("mutating the enqueued command changed the store: %q %q", it.Command, it.RequestType)
	}
	it.Command[0] = 'Y'
	items := expectQueue(t, s, "e1", "C1:Pending")
	if !bytes.Equal(items[0].Command, cmd("C1", 0).Raw) {
		t.Fatalf("mutating a returned item changed the store: %q", items[0].Command)
	}
	raw := []byte("notnow")
	mustSave(t, s, "e1", "C1", store.CommandNotNow, raw, at(2))
	raw[0] = 'X'
	it = mustNext(t, s, "e1", false, "C1")
	if string(it.Result) != "notnow" {
		t.Fatalf("mutating the saved result changed the store: %q", it.Result)
	}
	it.Result[0] = 'Y'
	items = expectCommandItems(t, s, "C1", "e1:NotNow")
	if string(items[0].Result) != "notnow" {
		t.Fatalf("mutating a returned result changed the store: %q", items[0].Result)
	}
	items[0].Result[0] = 'Z'
	items[0].Command[0] = 'Z'
	items = expectQueue(t, s, "e1", "C1:NotNow")
	if string(items[0].Result) != "notnow" || !bytes.Equal(items[0].Command, cmd("C1", 0).Raw) {
		t.Fatalf("mutating CommandItems' result changed the store: %q %q", items[0].Result, items[0].Command)
	}
}

func testPutEnrollmentKeepsQueue(t *testing.T, s store.Store) {
	mustEnroll(t, s, "e1")
	mustEnqueue(t, s, cmd("C1", 1), "e1")
	mustEnqueue(t, s, cmd("C2", 2), "e1")
	mustSave(t, s, "e1", "C1", store.CommandAcknowledged, []byte("ack"), at(3))
	// Replacing the record (every TokenUpdate does) keeps its commands.
	mustPut(t, s, fullEnrollment("e1"))
	expectQueue(t, s, "e1", "C2:Pending")
	expectCommandItems(t, s, "C1", "e1:Acknowledged")
}

func testClearQueue(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustEnroll(t, s, "e1", "e2")
	mustEnqueue(t, s, cmd("A", 1), "e1", "e2")
	mustEnqueue(t, s, cmd("B", 2), "e1")
	mustEnqueue(t, s, cmd("C", 3), "e1", "e2")
	mustSave(t, s, "e1", "B", store.CommandNotNow, []byte("notnow"), at(4))
	mustSave(t, s, "e1", "C", store.CommandAcknowledged, []byte("ack"), at(5))

	if err := s.ClearQueue(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	expectQueue(t, s, "e1")
	expectNoNext(t, s, "e1", false)
	expectQueue(t, s, "e2", "A:Pending", "C:Pending")
	// Answers already given are history and stay.
	items := expectCommandItems(t, s, "C", "e1:Acknowledged", "e2:Pending")
	if string(items[0].Result) != "ack" {
		t.Errorf("ClearQueue lost an answer: %s", describeItems(items))
	}
	expectCommandItems(t, s, "A", "e2:Pending")
	// A dropped command can no longer be answered on e1.
	expectNotFound(t, "SaveResult of a cleared command",
		s.SaveResult(ctx, "e1", "A", store.CommandAcknowledged, nil, at(6)))
	// The queue works afterwards; clearing an unknown or empty queue is fine.
	mustEnqueue(t, s, cmd("D", 7), "e1")
	expectQueue(t, s, "e1", "D:Pending")
	if err := s.ClearQueue(ctx, "nobody"); err != nil {
		t.Errorf("ClearQueue of an unknown enrollment: %v", err)
	}
}

// --- transcript -----------------------------------------------------------

func testTranscript(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.Transcript(ctx, "", 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("Transcript of an empty store: %v, %v", got, err)
	}
	if err := s.AppendTranscript(ctx); err != nil {
		t.Fatalf("AppendTranscript of nothing: %v", err)
	}
	var all []*store.TranscriptEntry
	batches := [][]string{{"e1", "e2", "e1"}, {""}, {"e2", "e1", ""}}
	n := 0
	for _, batch := range batches {
		var entries []*store.TranscriptEntry
		for _, id := range batch {
			entries = append(entries, transcriptEntry(id, n))
			n++
		}
		if err := s.AppendTranscript(ctx, entries...); err != nil {
			t.Fatal(err)
		}
		all = append(all, entries...)
	}
	for i, e := range all {
		if e.Seq <= 0 || (i > 0 && e.Seq <= all[i-1].Seq) {
			t.Fatalf("Seq not assigned in increasing order: entry %d has %d after %d", i, e.Seq, all[max(i-1, 0)].Seq)
		}
	}
	want := func(id string, after int64, limit int) []*store.TranscriptEntry {
		var out []*store.TranscriptEntry
		for _, e := range all {
			if (id == "" || e.EnrollmentID == id) && e.Seq > after && (limit == 0 || len(out) < limit) {
				out = append(out, e)
			}
		}
		return out
	}
	cases := []struct {
		id    string
		after int64
		limit int
	}{
		{"", 0, 0}, {"e1", 0, 0}, {"e2", 0, 0}, {"nobody", 0, 0},
		{"", all[2].Seq, 0}, {"e1", all[0].Seq, 0}, {"e1", all[0].Seq, 1},
		{"", 0, 2}, {"", all[len(all)-1].Seq, 0}, {"e2", all[4].Seq, 5}, {"", -1, 100},
	}
	for _, c := range cases {
		got, err := s.Transcript(ctx, c.id, c.after, c.limit)
		if err != nil {
			t.Fatalf("Transcript(%q, %d, %d): %v", c.id, c.after, c.limit, err)
		}
		w := want(c.id, c.after, c.limit)
		if len(got) != len(w) {
			t.Errorf("Transcript(%q, %d, %d) has %d entries, want %d", c.id, c.after, c.limit, len(got), len(w))
			continue
		}
		for i := range w {
			expectSame(t, fmt.Sprintf("Transcript(%q, %d, %d)[%d]", c.id, c.after, c.limit, i), got[i], w[i])
		}
	}

	// Neither the appended entry nor a returned one aliases the store.
	wantFirst := transcriptEntry("e1", 0)
	wantFirst.Seq = all[0].Seq
	all[0].Request[0] = 'X'
	all[0].Note = "changed"
	got, err := s.Transcript(ctx, "e1", 0, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Transcript: %v %v", got, err)
	}
	expectSame(t, "after mutating the input", got[0], wantFirst)
	got[0].Response[0] = 'Y'
	got, err = s.Transcript(ctx, "e1", 0, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Transcript: %v %v", got, err)
	}
	expectSame(t, "after mutating the output", got[0], wantFirst)
}

// --- challenges -----------------------------------------------------------

func testChallenges(t *testing.T, s store.Store) {
	ctx := context.Background()
	consume := func(c string, now time.Time, want bool) {
		t.Helper()
		ok, err := s.ConsumeChallenge(ctx, c, now)
		if err != nil || ok != want {
			t.Errorf("ConsumeChallenge(%q, %v) = %v, %v; want %v", c, now, ok, err, want)
		}
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		if err := s.PutChallenge(ctx, c, at(100)); err != nil {
			t.Fatal(err)
		}
	}
	consume("c1", at(50), true)
	consume("c1", at(50), false) // exactly once
	consume("unknown", at(50), false)
	consume("", at(50), false)
	consume("c2", at(100), false) // expired at its expiry instant
	consume("c2", at(50), false)  // and an expired one is gone
	consume("c3", at(100).Add(-time.Microsecond), true)

	// Putting again replaces the expiry.
	if err := s.PutChallenge(ctx, "c4", at(10)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, "c4", at(200)); err != nil {
		t.Fatal(err)
	}
	consume("c4", at(150), true)
}

// --- concurrency ----------------------------------------------------------

// testConcurrency has workers enqueue, fetch and answer at once on their own
// enrollment and on one they all share, append transcript and race for one
// challenge; the end state must be exactly what they did. Run it with -race.
func testConcurrency(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 50
	ctx := context.Background()
	mustEnroll(t, s, "shared")
	for w := range workers {
		mustEnroll(t, s, fmt.Sprintf("own-%d", w))
	}
	if err := s.PutChallenge(ctx, "race", at(1000)); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners int
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", w)
			fail := func(format string, args ...any) {
				errs <- fmt.Errorf("worker %d: "+format, append([]any{w}, args...)...)
			}
			for i := range perWorker {
				uuid := fmt.Sprintf("W%d-%03d", w, i)
				if err := s.Enqueue(ctx, cmd(uuid, i), own, "shared"); err != nil {
					fail("Enqueue %s: %v", uuid, err)
					return
				}
				// Every earlier command on own was answered, so this is next.
				it, err := s.NextCommand(ctx, own, false)
				if err != nil || it.CommandUUID != uuid {
					fail("NextCommand(%s) = %s, %v; want %s", own, describeItem(it), err, uuid)
					return
				}
				status := store.CommandAcknowledged
				if i%5 == 0 {
					status = store.CommandError
				}
				if err := s.SaveResult(ctx, own, uuid, status, []byte(uuid), at(i)); err != nil {
					fail("SaveResult(%s, %s): %v", own, uuid, err)
					return
				}
				if i%2 == 1 {
					if err := s.SaveResult(ctx, "shared", uuid, store.CommandAcknowledged, []byte(uuid), at(i)); err != nil {
						fail("SaveResult(shared, %s): %v", uuid, err)
						return
					}
				}
				// Everyone reads the shared queue while others write it.
				if _, err := s.NextCommand(ctx, "shared", i%3 == 0); err != nil && !errors.Is(err, store.ErrNotFound) {
					fail("NextCommand(shared): %v", err)
					return
				}
				if err := s.AppendTranscript(ctx, transcriptEntry(own, i)); err != nil {
					fail("AppendTranscript: %v", err)
					return
				}
				if err := s.TouchEnrollment(ctx, own, at(i)); err != nil {
					fail("TouchEnrollment: %v", err)
					return
				}
			}
			ok, err := s.ConsumeChallenge(ctx, "race", at(1))
			if err != nil {
				fail("ConsumeChallenge: %v", err)
				return
			}
			if ok {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if winners != 1 {
		t.Errorf("%d workers consumed the one challenge, want 1", winners)
	}

	// Own queues are empty; the shared queue holds exactly the even-numbered
	// commands, each worker's in the order it enqueued them.
	for w := range workers {
		own := fmt.Sprintf("own-%d", w)
		expectQueue(t, s, own)
		e, err := s.GetEnrollment(ctx, own)
		if err != nil || !e.LastSeen.Equal(at(perWorker-1)) {
			t.Errorf("%s LastSeen %v, %v", own, e.LastSeen, err)
		}
		tr, err := s.Transcript(ctx, own, 0, 0)
		if err != nil || len(tr) != perWorker {
			t.Fatalf("Transcript(%s) has %d entries, %v; want %d", own, len(tr), err, perWorker)
		}
		for i, e := range tr {
			if e.RequestID != fmt.Sprintf("req-%d", i) {
				t.Errorf("Transcript(%s)[%d] is %s: out of order", own, i, e.RequestID)
			}
		}
	}
	items, err := s.QueueItems(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != workers*perWorker/2 {
		t.Errorf("shared queue has %d items, want %d", len(items), workers*perWorker/2)
	}
	last := map[string]int{}
	for _, it := range items {
		var w, i int
		if _, err := fmt.Sscanf(it.CommandUUID, "W%d-%03d", &w, &i); err != nil || i%2 != 0 || it.Status != store.CommandPending {
			t.Errorf("unexpected item in the shared queue: %s", describeItem(it))
			continue
		}
		key := fmt.Sprint(w)
		if prev, ok := last[key]; ok && prev >= i {
			t.Errorf("shared queue has W%d-%03d after W%d-%03d: not FIFO", w, i, w, prev)
		}
		last[key] = i
	}
	for w := range workers {
		for _, i := range []int{0, 1, 5, perWorker - 1} {
			uuid := fmt.Sprintf("W%d-%03d", w, i)
			ownStatus := store.CommandAcknowledged
			if i%5 == 0 {
				ownStatus = store.CommandError
			}
			sharedStatus := store.CommandPending
			if i%2 == 1 {
				sharedStatus = store.CommandAcknowledged
			}
			items := expectCommandItems(t, s, uuid, fmt.Sprintf("own-%d:%s", w, ownStatus), "shared:"+sharedStatus)
			if string(items[0].Result) != uuid {
				t.Errorf("CommandItems(%s) own result %q", uuid, items[0].Result)
			}
		}
	}
	all, err := s.Transcript(ctx, "", 0, 0)
	if err != nil || len(all) != workers*perWorker {
		t.Fatalf("Transcript has %d entries, %v; want %d", len(all), err, workers*perWorker)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("Transcript Seq not increasing: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
}

// --- reset ----------------------------------------------------------------

func testReset(t *testing.T, s store.Store) {
	ctx := context.Background()
	e := fullEnrollment("e1")
	mustPut(t, s, e)
	mustEnqueue(t, s, cmd("C1", 1), "e1")
	mustEnqueue(t, s, cmd("C2", 2), "e1")
	mustSave(t, s, "e1", "C1", store.CommandAcknowledged, []byte("ack"), at(3))
	first := transcriptEntry("e1", 1)
	if err := s.AppendTranscript(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, "ch", at(100)); err != nil {
		t.Fatal(err)
	}

	if err := s.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if list, err := s.ListEnrollments(ctx); err != nil || len(list) != 0 {
		t.Errorf("ListEnrollments after Reset: %d, %v", len(list), err)
	}
	_, err := s.GetEnrollment(ctx, "e1")
	expectNotFound(t, "GetEnrollment after Reset", err)
	_, err = s.EnrollmentByCertHash(ctx, e.CertHash)
	expectNotFound(t, "EnrollmentByCertHash after Reset", err)
	for _, uuid := range []string{"C1", "C2"} {
		_, err = s.CommandItems(ctx, uuid)
		expectNotFound(t, "CommandItems after Reset", err)
	}
	if items, err := s.QueueItems(ctx, "e1"); err != nil || len(items) != 0 {
		t.Errorf("QueueItems after Reset: %v, %v", items, err)
	}
	if tr, err := s.Transcript(ctx, "", 0, 0); err != nil || len(tr) != 0 {
		t.Errorf("Transcript after Reset: %d entries, %v", len(tr), err)
	}
	if ok, err := s.ConsumeChallenge(ctx, "ch", at(1)); err != nil || ok {
		t.Errorf("ConsumeChallenge after Reset: %v, %v", ok, err)
	}

	// The store works as new; UUIDs are free again.
	mustEnroll(t, s, "e1")
	mustEnqueue(t, s, cmd("C1", 5), "e1")
	expectQueue(t, s, "e1", "C1:Pending")
	// Seq keeps counting, so a client polling with afterSeq sees what comes
	// after a Reset.
	next := transcriptEntry("e1", 2)
	if err := s.AppendTranscript(ctx, next); err != nil {
		t.Fatal(err)
	}
	if next.Seq <= first.Seq {
		t.Errorf("Seq after Reset = %d, want > %d", next.Seq, first.Seq)
	}
}

func testDocuments(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.GetDocument(ctx, "user", "a"); !errors.Is(err, store.ErrNotFound) || httpStatus(err) != http.StatusNotFound {
		t.Fatalf("GetDocument of a missing document = %v, want a 404 ErrNotFound", err)
	}
	if err := s.PutDocument(ctx, "", "a", nil); httpStatus(err) != http.StatusBadRequest {
		t.Errorf("PutDocument without a kind = %v, want a 400", err)
	}
	data := []byte{'{', 0, 0xff, '}'}
	for _, id := range []string{"b", "a", "c"} {
		if err := s.PutDocument(ctx, "user", id, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutDocument(ctx, "group", "a", []byte("other kind")); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the store must have copied it
	if err := s.PutDocument(ctx, "user", "b", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDocument(ctx, "user", "a")
	if err != nil || string(got) != "{\x00\xff}" {
		t.Fatalf("GetDocument = %q, %v", got, err)
	}
	got[0] = 'Y' // nor alias what it returns
	list, err := s.ListDocuments(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID+"="+string(d.Data))
		if d.Kind != "user" || d.UpdatedAt.IsZero() {
			t.Errorf("document %+v: want kind user and an update time", d)
		}
	}
	if want := []string{"a={\x00\xff}", "b=replaced", "c={\x00\xff}"}; fmt.Sprintf("%q", ids) != fmt.Sprintf("%q", want) {
		t.Errorf("ListDocuments = %q, want %q", ids, want)
	}
	if err := s.DeleteDocument(ctx, "user", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDocument(ctx, "user", "b"); err != nil {
		t.Errorf("deleting a missing document = %v, want nil", err)
	}
	if list, _ := s.ListDocuments(ctx, "user"); len(list) != 2 {
		t.Errorf("after delete: %d documents, want 2", len(list))
	}
	if list, _ := s.ListDocuments(ctx, "nothing"); list == nil || len(list) != 0 {
		t.Errorf("ListDocuments of an empty kind = %#v, want an empty non-nil list", list)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDocument(ctx, "group", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Reset GetDocument = %v, want ErrNotFound", err)
	}
}

// testEnrollmentBinding: a store that reads bindings alone (both of
// mockmdm's do) gives what the record says, after every change to it.
func testEnrollmentBinding(t *testing.T, s store.Store) {
	br, ok := s.(interface {
		EnrollmentBinding(ctx context.Context, id string) (store.Binding, error)
	})
	if !ok {
		t.Skip("the store reads no bindings alone")
	}
	ctx := context.Background()
	if _, err := br.EnrollmentBinding(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown enrollment: %v, want ErrNotFound", err)
	}
	e := &store.Enrollment{ID: "b1", Type: "Device", UDID: "b1", CertHash: "aa"}
	for _, step := range []func(){
		func() {},
		func() { e.CertHash = "bb" },
		func() { e.CheckedOut = true },
		func() { e.CheckedOut, e.CertHash = false, "cc" },
	} {
		step()
		if err := s.PutEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
		_, _ = s.GetEnrollment(ctx, e.ID) // a cache, if the store has one, holds the record now
		b, err := br.EnrollmentBinding(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b != (store.Binding{ID: e.ID, CertHash: e.CertHash, CheckedOut: e.CheckedOut}) {
			t.Fatalf("binding %+v after the record became %+v", b, e)
		}
	}
}
