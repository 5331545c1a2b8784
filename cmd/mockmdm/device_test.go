package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
)

// TestDeviceCommands drives "mockmdm device" as a person would: create,
// enroll, connect (answering a queued command), list profiles, read the
// transcript, remove — the device kept in a file between commands.
func TestDeviceCommands(t *testing.T) {
	pki, st, srv, ts, dir, ca, dev := cliServer(t)
	file := filepath.Join(dir, "ipad.json")
	var err error

	if out := dev("create", "-file", file, "-seed", "7", "-model", "iPad"); !strings.Contains(out, "enrolled:   no") {
		t.Fatalf("create: %s", out)
	}
	out := dev("enroll", "-file", file, "-url", srv.URL(server.PathEnroll), "-ca", ca)
	if !strings.Contains(out, "verified, signed by mockmdm profile signing") || !strings.Contains(out, "enrolled in "+srv.URL(server.PathMDM)) {
		t.Fatalf("enroll: %s", out)
	}
	list, err := st.ListEnrollments(context.Background())
	if err != nil || len(list) != 1 {
		t.Fatalf("server enrollments: %v %v", list, err)
	}
	cmd := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>CLI-1</string><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>`)
	if err := st.Enqueue(context.Background(), &store.Command{UUID: "CLI-1", RequestType: "ProfileList", Raw: cmd}, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if out := dev("connect", "-file", file, "-ca", ca); !strings.Contains(out, "CLI-1 ProfileList → Acknowledged") {
		t.Fatalf("connect: %s", out)
	}
	// listen: the device holds a stream at the server's mock APNs and answers
	// a pushed command on its own.
	listened := make(chan string, 1)
	go func() {
		var out bytes.Buffer
		err := run(context.Background(), []string{"device", "listen", "-file", file, "-ca", ca, "-for", "5s"}, envOf(), &out, io.Discard)
		if err != nil {
			out.WriteString("error: " + err.Error())
		}
		listened <- out.String()
	}()
	for deadline := time.Now().Add(5 * time.Second); srv.MockAPNs().Stats().Connected == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("device listen did not subscribe")
		}
	}
	cmd2 := bytes.ReplaceAll(cmd, []byte("CLI-1"), []byte("CLI-2"))
	if err := st.Enqueue(context.Background(), &store.Command{UUID: "CLI-2", RequestType: "ProfileList", Raw: cmd2}, list[0].ID); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL("/v1/push"), strings.NewReader(`{"enrollment_ids":["`+list[0].ID+`"]}`))
	req.Header.Set("Authorization", "Bearer "+pki.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("push: %v %v", resp, err)
	}
	resp.Body.Close()
	if out := <-listened; !strings.Contains(out, "subscribed at") || !strings.Contains(out, "CLI-2 ProfileList → Acknowledged") {
		t.Fatalf("listen: %s", out)
	}
	if out := dev("profiles", "-file", file); !strings.Contains(out, "mockmdm enrollment") {
		t.Fatalf("profiles: %s", out)
	}
	if out := dev("transcript", "-file", file); !strings.Contains(out, "Authenticate") || !strings.Contains(out, "connect") {
		t.Fatalf("transcript: %s", out)
	}
	if out := dev("remove", "-file", file, "-ca", ca); !strings.Contains(out, "unenrolled") {
		t.Fatalf("remove: %s", out)
	}
	e, _ := st.GetEnrollment(context.Background(), list[0].ID)
	if !e.CheckedOut {
		t.Error("remove did not send CheckOut")
	}
	if out := dev("show", "-file", file); !strings.Contains(out, "enrolled:   no") {
		t.Fatalf("show after remove: %s", out)
	}

	// Mistakes are usage errors or typed errors naming the file.
	for _, args := range [][]string{
		{"create", "-file", file}, // exists
		{"create", "-file", file + "2", "-model", "Toaster"},
		{"enroll", "-file", file}, // neither -url nor -profile
		{"frobnicate"},
		{"show", "-file", filepath.Join(dir, "missing.json")},
	} {
		if err := run(context.Background(), append([]string{"device"}, args...), envOf(), io.Discard, io.Discard); err == nil {
			t.Errorf("device %v: no error", args)
		}
	}
}

// cliServer is a mockmdm server over TLS for "mockmdm device" tests, the
// CA file its devices trust, and a runner of device commands.
func cliServer(t *testing.T) (*server.PKI, store.Store, *server.Server, *httptest.Server, string, string, func(args ...string) string) {
	t.Helper()
	pki, err := server.NewPKI([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	ts := httptest.NewUnstartedServer(nil)
	srv, err := server.New(st, pki, "https://"+ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.TLS = srv.TLSConfig()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.CA.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"device"}, args...), envOf(), &out, io.Discard); err != nil {
			t.Fatalf("mockmdm device %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	return pki, st, srv, ts, dir, ca, dev
}

// TestDeviceUserAndDeclarationCommands: a Mac at the terminal logs a user
// in (the server records the user's channel), answers on that channel,
// logs out; a declaration given to the Mac is synced and listed.
func TestDeviceUserAndDeclarationCommands(t *testing.T) {
	pki, st, srv, ts, dir, ca, dev := cliServer(t)
	ctx := context.Background()
	file := filepath.Join(dir, "mac.json")
	dev("create", "-file", file, "-seed", "9", "-model", "Mac", "-supervised")
	dev("enroll", "-file", file, "-url", srv.URL(server.PathEnroll), "-ca", ca)
	out := dev("login", "-file", file, "-user", "ann", "-fullname", "Ann Example", "-ca", ca)
	_, id, ok := strings.Cut(strings.TrimSpace(out), "channel as ")
	if !ok {
		t.Fatalf("login: %s", out)
	}
	if e, err := st.GetEnrollment(ctx, id); err != nil || e.UserShortName != "ann" || e.UserLongName != "Ann Example" {
		t.Fatalf("the user's channel %q on the server: %+v %v", id, e, err)
	}
	cmd := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>CommandUUID</key><string>U-1</string><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>`)
	if err := st.Enqueue(ctx, &store.Command{UUID: "U-1", RequestType: "ProfileList", Raw: cmd}, id); err != nil {
		t.Fatal(err)
	}
	if out := dev("connect", "-file", file, "-ca", ca, "-user-channel"); !strings.Contains(out, "U-1 ProfileList → Acknowledged") {
		t.Fatalf("connect -user-channel: %s", out)
	}
	if out := dev("logout", "-file", file); !strings.Contains(out, "logged out") {
		t.Fatalf("logout: %s", out)
	}
	if err := run(ctx, []string{"device", "connect", "-file", file, "-ca", ca, "-user-channel"}, envOf(), io.Discard, io.Discard); err == nil {
		t.Error("connect -user-channel with nobody logged in")
	}

	// A declaration for the Mac's device channel, synced and listed.
	api := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pki.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := ts.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %v %v", method, path, resp, err)
		}
		resp.Body.Close()
	}
	udid := strings.SplitN(id, ":", 2)[0]
	api("PUT", "/v1/declarations/com.example.test", `{"Type":"com.apple.configuration.management.test","Payload":{"Echo":"hi"}}`)
	api("PUT", "/v1/enrollments/"+udid+"/declarations", `{"identifiers":["com.example.test"]}`)
	dm := bytes.ReplaceAll(bytes.ReplaceAll(cmd, []byte("U-1"), []byte("D-1")), []byte("ProfileList"), []byte("DeclarativeManagement"))
	if err := st.Enqueue(ctx, &store.Command{UUID: "D-1", RequestType: "DeclarativeManagement", Raw: dm}, udid); err != nil {
		t.Fatal(err)
	}
	dev("connect", "-file", file, "-ca", ca)
	if out := dev("declarations", "-file", file); !strings.Contains(out, "com.example.test") || !strings.Contains(out, "1 sync(s)") || !strings.Contains(out, "not referenced by an activation") {
		t.Fatalf("declarations: %s", out)
	}
	for _, args := range [][]string{
		{"login", "-file", file}, // no -user
		{"login", "-file", filepath.Join(dir, "missing.json"), "-user", "x"},
	} {
		if err := run(ctx, append([]string{"device"}, args...), envOf(), io.Discard, io.Discard); err == nil {
			t.Errorf("device %v: no error", args)
		}
	}
}
