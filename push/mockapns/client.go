package mockapns

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mockmdm/mockmdm/push"
)

// DialOptions says how a device reaches the mock APNs.
type DialOptions struct {
	// TLS is the client configuration for an https base URL (its RootCAs
	// must trust the mock's server certificate). ServerName and NextProtos
	// are filled in.
	TLS *tls.Config
	// Conn, when set, opens the raw connection instead of dialing TCP — for
	// example Server.DialInProcess. The base URL's scheme then only decides
	// whether TLS is layered on top (it is not for DialInProcess: use http).
	Conn func(ctx context.Context) (net.Conn, error)
	// Timeout bounds the dial and the upgrade (default 10s).
	Timeout time.Duration
}

// Stream is a device's subscription: pushes for its token arrive on it.
type Stream struct {
	conn    net.Conn
	br      *bufio.Reader
	writeMu sync.Mutex
	once    sync.Once
}

// Push is one notification as a device receives it.
type Push struct {
	ID      string
	Topic   string
	Payload json.RawMessage
}

// PushMagic returns the "mdm" value of an MDM push, or "" for another payload.
func (p Push) PushMagic() string {
	var m push.MDMPayload
	if json.Unmarshal(p.Payload, &m) != nil {
		return ""
	}
	return m.MDM
}

// maxFrame bounds one line from the mock: a 4 KB payload plus its framing.
const maxFrame = push.MaxPayload + 1024

// Dial subscribes token to topic at the mock APNs whose base URL is
// baseURL (e.g. https://mockmdm.local:8443/apns): it sends the Upgrade
// request for StreamPath and returns the stream once the mock answered 101.
func Dial(ctx context.Context, baseURL string, token []byte, topic string, o DialOptions) (*Stream, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mock APNs URL %q must be an absolute http(s) URL", baseURL)
	}
	if len(token) != push.TokenLen {
		return nil, fmt.Errorf("push token is %d bytes, want %d", len(token), push.TokenLen)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var conn net.Conn
	if o.Conn != nil {
		conn, err = o.Conn(ctx)
	} else {
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443", "http": "80"}[u.Scheme])
		}
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the mock APNs at %s: %w", baseURL, err)
	}
	if u.Scheme == "https" {
		cfg := &tls.Config{}
		if o.TLS != nil {
			cfg = o.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"} // an Upgrade needs HTTP/1.1
		if cfg.CurvePreferences == nil {
			// Classical key exchange: a hybrid post-quantum key share makes
			// the handshake kilobytes larger, and TLS keeps buffers that size
			// for the life of the connection — on both ends, for every one of
			// a fleet's thousands of idle streams, which carry only wake-ups.
			cfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS with the mock APNs at %s: %w", baseURL, err)
		}
		conn = tc
	}
	// Bound the upgrade by ctx: a deadline now, cleared after.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	q := url.Values{"token": {push.TokenHex(token)}, "topic": {topic}}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: u.Path + StreamPath, RawQuery: q.Encode()},
		Host:       u.Host,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"Connection": {"Upgrade"}, "Upgrade": {StreamProtocol}, "User-Agent": {"mockmdm-device"}},
	}
	if err := req.Write(conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("subscribing at %s: %w", baseURL, err)
	}
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("subscribing at %s: %w", baseURL, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("the mock APNs at %s refused the subscription: %s: %s", baseURL, resp.Status, strings.TrimSpace(string(msg)))
	}
	_ = conn.SetDeadline(time.Time{})
	return &Stream{conn: conn, br: br}, nil
}

// Next waits for the next push. It returns an error when the stream ends
// (the mock closed it, the network failed, or Close was called).
func (s *Stream) Next() (Push, error) {
	var line []byte
	for {
		chunk, err := s.br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull && len(line) <= maxFrame {
			continue
		}
		if err != nil {
			return Push{}, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			line = line[:0] // a heartbeat
			continue
		}
		break
	}
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return Push{}, fmt.Errorf("the mock APNs sent a line that is not a push: %w", err)
	}
	return Push(f), nil
}

// Ack tells the mock the push arrived, so it stops holding it.
func (s *Stream) Ack(id string) error {
	b, err := json.Marshal(ackFrame{Ack: id})
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = s.conn.Write(append(b, '\n'))
	return err
}

// Close ends the subscription.
func (s *Stream) Close() error {
	var err error
	s.once.Do(func() { err = s.conn.Close() })
	return err
}
