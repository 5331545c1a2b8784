package mockapns

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
)

// InProcessTransport is an http.RoundTripper that hands each request to the
// mock's handler in this process, as if it had arrived over HTTP/2 with
// TLS client certificate chain (leaf first) — for a server that pushes to
// its own mock with no listener. A real provider-to-APNs exchange over
// HTTP/2 and TLS is what Handler serves on a listener.
func (s *Server) InProcessTransport(chain ...*x509.Certificate) http.RoundTripper {
	return inProcess{h: s.Handler(), chain: chain}
}

type inProcess struct {
	h     http.Handler
	chain []*x509.Certificate
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.RemoteAddr = "in-process"
	r.RequestURI = req.URL.RequestURI()
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, NegotiatedProtocol: "h2", PeerCertificates: t.chain}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &recorder{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()), Request: req,
	}, nil
}

// recorder is the least ResponseWriter the push handler needs.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
