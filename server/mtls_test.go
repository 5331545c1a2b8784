package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/store/memory"
)

// TestMutualTLSIdentityOverSockets authenticates a device by its TLS client
// certificate (a profile without SignMessage) through a real TLS handshake
// with the server's own TLS configuration.
func TestMutualTLSIdentityOverSockets(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	s, err := New(memory.New(), sharedPKI(t), "https://"+ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Handler()
	ts.TLS = s.TLSConfig()
	ts.StartTLS()
	defer ts.Close()

	cert, key := testIdentity(t, s.PKI().CA, time.Hour)
	roots := x509.NewCertPool()
	roots.AddCert(s.PKI().CA.Cert)
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: roots}
		if withCert {
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	body := []byte(`<?xml version="1.0"?><plist version="1.0"><dict><key>MessageType</key><string>Authenticate</string>` +
		`<key>UDID</key><string>mtls-device</string><key>Topic</key><string>` + s.PKI().Topic + `</string></dict></plist>`)
	put := func(c *http.Client) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+PathCheckin, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm-checkin")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, msg := put(client(false)); code != 400 || !strings.Contains(msg, "no device identity") {
		t.Fatalf("without a client certificate: %d %s", code, msg)
	}
	if code, msg := put(client(true)); code != 200 {
		t.Fatalf("with the identity as TLS client certificate: %d %s", code, msg)
	}
	e, err := s.Store().GetEnrollment(t.Context(), "mtls-device")
	if err != nil || e.CertHash == "" {
		t.Fatalf("enrollment bound to the TLS identity: %+v %v", e, err)
	}
	// TLS 1.1 is refused at the handshake.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(ts.URL + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}
