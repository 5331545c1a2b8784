package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/certs"
)

// statusCmd is "mockmdm status": what a running server says about itself
// and its push certificate, read through the API with the key kept in the
// data directory.
func statusCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockmdm status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "base URL of the server (default: https://localhost:8443)")
	dataDir := fs.String("data", "mockmdm-data", "data directory of the server: its API key and test CA")
	key := fs.String("api-key", "", "API key (default: <data>/api-key)")
	asJSON := fs.Bool("json", false, "print the push certificate status as JSON")
	if err := parseFlags(fs, args, getenv, "mockmdm status -h"); err != nil {
		return err
	}
	if *url == "" {
		*url = "https://localhost:8443"
	}
	if *key == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, "api-key"))
		if err != nil {
			return usageError{fmt.Errorf("no API key: give -api-key, or -data the server's data directory (%v)", err)}
		}
		*key = strings.TrimSpace(string(b))
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cas, err := certs.ReadCertPEM(filepath.Join(*dataDir, "ca.pem")); err == nil {
		for _, c := range cas {
			pool.AddCert(c)
		}
	}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	client := api.NewClient(strings.TrimRight(*url, "/")+"/v1", *key, api.WithHTTPClient(hc))
	info, err := client.Info(ctx)
	if err != nil {
		return fmt.Errorf("asking %s: %w", *url, err)
	}
	st, err := client.PushCertificate(ctx)
	if err != nil {
		return fmt.Errorf("asking %s for the push certificate: %w", *url, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "mockmdm %s at %s\n", info.Version, *url)
	fmt.Fprintf(stdout, "  enrollment URL:    %s\n", info.EnrollmentURL)
	fmt.Fprintf(stdout, "push certificate (%s)\n", st.Source)
	fmt.Fprintf(stdout, "  topic:             %s\n", st.Topic)
	fmt.Fprintf(stdout, "  not after:         %s (%d days left)\n", st.NotAfter.UTC().Format(time.RFC3339), st.DaysLeft)
	fmt.Fprintf(stdout, "  state:             %s\n", st.State)
	fmt.Fprintf(stdout, "  pushes go to:      %s\n", st.PushURL)
	for _, w := range st.Warnings {
		fmt.Fprintf(stdout, "  warning:           %s\n", w)
	}
	tok, err := client.ADETokenStatus(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("asking %s for the ADE server token: %w", *url, err)
	case tok == nil:
		fmt.Fprintf(stdout, "ADE server token:    none uploaded (PUT /v1/ade/token)\n")
	default:
		fmt.Fprintf(stdout, "ADE server token\n")
		fmt.Fprintf(stdout, "  consumer key:      %s\n", tok.ConsumerKey)
		fmt.Fprintf(stdout, "  expires:           %s (%d days left)\n", tok.Expiry.UTC().Format(time.RFC3339), tok.DaysLeft)
		fmt.Fprintf(stdout, "  state:             %s\n", tok.State)
	}
	return nil
}
