package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// TLSConfig is the HTTPS configuration: TLS 1.2 or later with forward-secret
// AEAD suites only (what Apple's ATS asks of MDM servers), and a request for
// a client certificate so devices without SignMessage can authenticate by
// mutual TLS. The certificate is checked by the MDM handler, not here, so
// that a bad one gets a reason instead of a failed handshake.
func (s *Server) TLSConfig() *tls.Config { return TLSConfigFor(s.pki.TLS) }

// TLSConfigFor is TLSConfig with cert as the server's certificate: what
// mockmdm bench -floor serves with, so its floor pays the same TLS.
func TLSConfigFor(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

func (s *Server) httpServer(tlsConfig *tls.Config) *http.Server {
	return NewHTTPServer(s.handler, tlsConfig, s.log)
}

// NewHTTPServer is the http.Server mockmdm serves h with: its header, read,
// write and idle timeouts and header limit, errors logged to log at debug
// level. mockmdm bench -floor serves its floor with it too.
func NewHTTPServer(h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Long enough for the API's longest wait (120 s) plus the answer.
		WriteTimeout:   150 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Serve serves HTTPS on httpsLn and plain HTTP on httpLn (either may be nil)
// until ctx is done, then shuts down gracefully, letting requests in flight
// finish for up to grace. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, httpsLn, httpLn net.Listener, grace time.Duration) error {
	return s.ServeWithAPNs(ctx, httpsLn, httpLn, nil, grace)
}

// ServeWithAPNs is Serve, plus the mock APNs alone on apnsLn (if not nil)
// over TLS with HTTP/2, at Apple's paths (/3/device/<token>) — for a
// provider that cannot add a path prefix to its APNs URL. At shutdown the
// mock APNs closes its device streams, which the HTTP servers no longer
// track once upgraded.
func (s *Server) ServeWithAPNs(ctx context.Context, httpsLn, httpLn, apnsLn net.Listener, grace time.Duration) error {
	if httpsLn == nil && httpLn == nil {
		return errors.New("nothing to serve: give an HTTPS or an HTTP listener")
	}
	defer s.Close()
	var servers []*http.Server
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	start := func(srv *http.Server, ln net.Listener) {
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	if httpsLn != nil {
		cfg := s.TLSConfig()
		start(s.httpServer(cfg), tls.NewListener(httpsLn, cfg))
	}
	if httpLn != nil {
		start(s.httpServer(nil), httpLn)
	}
	if apnsLn != nil {
		cfg := s.TLSConfig()
		srv := s.httpServer(cfg)
		srv.Handler = s.push.mock.Handler()
		start(srv, tls.NewListener(apnsLn, cfg))
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			_ = srv.Close()
		}
	}
	wg.Wait()
	return serveErr
}
