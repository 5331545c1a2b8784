package mockapns

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/push"
)

// FuzzPushRequest feeds the provider endpoint arbitrary paths, headers and
// bodies: every answer is one of Apple's statuses with a JSON reason, never
// a panic.
func FuzzPushRequest(f *testing.F) {
	fx := testFixture(f)
	tok := strings.Repeat("ab", 32)
	f.Add(push.PathPrefix+tok, "10", "mdm", "", []byte(`{"mdm":"M"}`))
	f.Add(push.PathPrefix+tok, "x", "alert", "1700000000", []byte(`{"mdm":1}`))
	f.Add("/3/device/", "", "", "-1", []byte(""))
	f.Add(push.PathPrefix+"zz", "5", "voip", "0", []byte("[1,2"))
	m := New([]*x509.Certificate{fx.pushCA.Cert})
	tb, _ := parseToken(tok)
	m.Register(tb, fx.topic)
	client := &http.Client{Transport: m.InProcessTransport(fx.cert.Leaf)}
	f.Fuzz(func(t *testing.T, path, priority, pushType, expiration string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodPost, "https://apns.test"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		for k, v := range map[string]string{push.HeaderPriority: priority, push.HeaderPushType: pushType, push.HeaderExpiration: expiration} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header.Set(k, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s answered %d", path, resp.StatusCode)
		}
	})
}

// FuzzStreamFrames feeds a device stream arbitrary bytes from "the mock":
// Next returns pushes or an error, never panics or loops.
func FuzzStreamFrames(f *testing.F) {
	f.Add([]byte(`{"id":"1","topic":"com.apple.mgmt.x","payload":{"mdm":"M"}}` + "\n"))
	f.Add([]byte("not json\n"))
	f.Add(bytes.Repeat([]byte("x"), 10000))
	f.Add([]byte(`{"id":1}` + "\n" + `{"payload":null}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := net.Pipe()
		go func() { b.Write(data); b.Close() }()
		s := &Stream{conn: a, br: bufio.NewReaderSize(a, 512)}
		defer s.Close()
		_ = a.SetDeadline(time.Now().Add(5 * time.Second))
		for range 1000 {
			p, err := s.Next()
			if err != nil {
				return
			}
			_ = p.PushMagic()
		}
	})
}

// FuzzAckLines feeds the mock's ack reader arbitrary device bytes: it
// closes the stream on garbage and never panics.
func FuzzAckLines(f *testing.F) {
	fx := testFixture(f)
	f.Add([]byte(`{"ack":"x"}` + "\n"))
	f.Add([]byte("\n\n\n"))
	f.Add(bytes.Repeat([]byte("a"), 1000))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := New([]*x509.Certificate{fx.pushCA.Cert})
		defer m.Close()
		conn, err := m.DialInProcess(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		tok := strings.Repeat("cd", 32)
		req := "GET /mock/v1/stream?token=" + tok + "&topic=" + fx.topic + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + StreamProtocol + "\r\n\r\n"
		go func() { conn.Write(append([]byte(req), data...)) }()
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		resp.Body.Close()
	})
}
