package device

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/push"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

// listen runs d.ListenForPushes until the test ends and collects events.
func listen(t *testing.T, d *Device, url string, o mockapns.DialOptions) (events func() []PushEvent) {
	t.Helper()
	var mu sync.Mutex
	var evs []PushEvent
	ready := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.ListenForPushes(ctx, url, o, WithRetry(20*time.Millisecond),
			OnSubscribed(func() {
				select {
				case ready <- struct{}{}:
				default:
				}
			}),
			OnPush(func(ev PushEvent) { mu.Lock(); evs = append(evs, ev); mu.Unlock() }))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("ListenForPushes returned %v, want context.Canceled", err)
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the device did not subscribe")
	}
	return func() []PushEvent { mu.Lock(); defer mu.Unlock(); return append([]PushEvent(nil), evs...) }
}

func waitEvents(t *testing.T, events func() []PushEvent, n int) []PushEvent {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if evs := events(); len(evs) >= n {
			return evs
		}
	}
	t.Fatalf("fewer than %d push events: %+v", n, events())
	return nil
}

// TestPushFromMockAPNsWakesDeviceOfAnotherServer: the mock APNs and the
// virtual device need nothing of mockmdm's MDM server — here the device is
// enrolled in the package's fake MDM, whose provider pushes through the
// mock with a push certificate for the fake's topic.
func TestPushFromMockAPNsWakesDeviceOfAnotherServer(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	d := f.enrolled(o)
	pushCA, err := certs.NewCA("mock Apple push CA", 2048, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pushCert, _, err := certs.NewMockPushCert(pushCA, o.Topic, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m := mockapns.New([]*x509.Certificate{pushCA.Cert})
	t.Cleanup(m.Close)
	events := listen(t, d, "http://apns.test", mockapns.DialOptions{Conn: m.DialInProcess})

	uuids := f.enqueue(&mdm.DeviceInformation{Queries: []string{"DeviceName"}})
	hw := d.Hardware()
	req, _ := http.NewRequest(http.MethodPost, "https://apns.test"+push.PathPrefix+push.TokenHex(hw.PushToken), bytes.NewReader(push.EncodeMDMPayload(hw.PushMagic)))
	resp, err := (&http.Client{Transport: m.InProcessTransport(pushCert)}).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("push: %v %v", resp, err)
	}
	evs := waitEvents(t, events, 1)
	if evs[0].Ignored != "" || evs[0].Err != nil || evs[0].Connect == nil || len(evs[0].Connect.Commands) != 1 || evs[0].Connect.Commands[0].CommandUUID != uuids[0] {
		t.Fatalf("event %+v", evs[0])
	}
	if got := f.reportsSnapshot(); len(got) == 0 {
		t.Fatal("the fake MDM got no connect")
	}
}

// fakeStream is a hand-written stream server: it sends what the test says,
// including pushes the mock APNs would never route to this token.
type fakeStream struct {
	ln    net.Listener
	conns chan net.Conn
	acks  chan string
}

func newFakeStream(t *testing.T) *fakeStream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeStream{ln: ln, conns: make(chan net.Conn, 4), acks: make(chan string, 16)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err != nil {
				c.Close()
				continue
			}
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", mockapns.StreamProtocol)
			fs.conns <- c
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					var a struct{ Ack string }
					_ = json.Unmarshal([]byte(line), &a)
					fs.acks <- a.Ack
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-fs.conns:
				c.Close()
				continue
			default:
			}
			break
		}
		wg.Wait()
	})
	return fs
}

func (fs *fakeStream) send(t *testing.T, c net.Conn, id, topic, payload string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "topic": topic, "payload": json.RawMessage(payload)})
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceIgnoresForeignPushes: a push for another topic, or without the
// device's PushMagic, is acknowledged to APNs, recorded in the transcript,
// and starts no connect — as a real device silently drops it.
func TestDeviceIgnoresForeignPushes(t *testing.T) {
	f := newFakeMDM(t, false)
	o := f.options()
	d := f.enrolled(o)
	fs := newFakeStream(t)
	events := listen(t, d, "http://"+fs.ln.Addr().String(), mockapns.DialOptions{})
	var c net.Conn
	select {
	case c = <-fs.conns:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription")
	}
	magic := d.Hardware().PushMagic
	fs.send(t, c, "1", "com.apple.mgmt.External.someone-else", fmt.Sprintf(`{"mdm":%q}`, magic))
	fs.send(t, c, "2", o.Topic, `{"mdm":"NOT-THE-MAGIC"}`)
	fs.send(t, c, "3", o.Topic, fmt.Sprintf(`{"mdm":%q}`, magic))
	evs := waitEvents(t, events, 3)
	if !strings.Contains(evs[0].Ignored, "someone-else") || evs[0].Connect != nil {
		t.Fatalf("other topic: %+v", evs[0])
	}
	if !strings.Contains(evs[1].Ignored, "PushMagic") || evs[1].Connect != nil {
		t.Fatalf("wrong magic: %+v", evs[1])
	}
	if evs[2].Ignored != "" || evs[2].Connect == nil {
		t.Fatalf("good push: %+v", evs[2])
	}
	for _, want := range []string{"1", "2", "3"} {
		select {
		case got := <-fs.acks:
			if got != want {
				t.Fatalf("ack %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no ack for %s", want)
		}
	}
	var ignored int
	for _, ex := range d.Transcript() {
		if ex.Step == "push" && strings.Contains(ex.Err, "ignored") {
			ignored++
		}
	}
	if ignored != 2 {
		t.Fatalf("transcript records %d ignored pushes, want 2", ignored)
	}
}

// TestListenResubscribesAfterDropAndUnenroll: the stream comes back after
// the server drops it, and an unenrolled device stops subscribing.
func TestListenResubscribesAfterDropAndUnenroll(t *testing.T) {
	f := newFakeMDM(t, false)
	d := f.enrolled(f.options())
	fs := newFakeStream(t)
	listen(t, d, "http://"+fs.ln.Addr().String(), mockapns.DialOptions{})
	first := <-fs.conns
	first.Close()
	select {
	case c := <-fs.conns:
		c.Close() // and again
	case <-time.After(5 * time.Second):
		t.Fatal("the device did not subscribe again after the stream dropped")
	}
	select {
	case c := <-fs.conns:
		d.UnenrollSilently()
		_ = c
	case <-time.After(5 * time.Second):
		t.Fatal("no third subscription")
	}
	select {
	case <-fs.conns:
		t.Fatal("an unenrolled device subscribed")
	case <-time.After(200 * time.Millisecond):
	}
}
