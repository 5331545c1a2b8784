package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device/fleet"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

type listenConfig struct {
	base, apnsURL, apiKey, dataDir string
	trust                          *x509.CertPool
	rounds                         int
	hold                           time.Duration
	stderr                         io.Writer
	httpClient                     *http.Client
}

// pushBatch bounds one POST /v1/push.
const pushBatch = 1000

// listenPhase subscribes the fleet at the mock APNs, then pushes it
// rounds times through the API, waiting each time for every device to wake
// and finish its session.
func listenPhase(ctx context.Context, f *fleet.Fleet, c listenConfig) ([]*fleet.Report, error) {
	if c.apnsURL == "" {
		if c.base == "" {
			return nil, usageError{errors.New("-listen needs -url or -apns-url")}
		}
		c.apnsURL = strings.TrimRight(c.base, "/") + "/apns"
	}
	enrolled := 0
	var ids []string
	for _, d := range f.Devices() {
		if d.IsEnrolled() {
			enrolled++
			ids = append(ids, d.UDID())
		}
	}
	client := c.apiClient()
	var before *api.APNsStats
	if client != nil {
		before, _ = client.APNsStats(ctx, true)
	}
	start := time.Now()
	l := f.Listen(ctx, c.apnsURL, mockapns.DialOptions{TLS: &tls.Config{RootCAs: c.trust, MinVersion: tls.VersionTLS12}})
	defer l.Stop()
	if !l.WaitFor(ctx, func() bool { return l.Subscribed() >= enrolled }) {
		return nil, fmt.Errorf("only %d of %d devices subscribed at %s", l.Subscribed(), enrolled, c.apnsURL)
	}
	subscribed := time.Since(start)
	fmt.Fprintf(c.stderr, "listen: %d devices subscribed at %s in %s (%.0f/s)\n", enrolled, c.apnsURL, subscribed.Round(time.Millisecond), float64(enrolled)/subscribed.Seconds())
	if before != nil && before.Runtime != nil {
		if after, err := client.APNsStats(ctx, true); err == nil && after.Runtime != nil {
			streams := after.Connected - before.Connected
			grown := int64(after.Runtime.HeapInuseBytes+after.Runtime.StackInuseBytes) - int64(before.Runtime.HeapInuseBytes+before.Runtime.StackInuseBytes)
			per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(max(1, streams)) }
			fmt.Fprintf(c.stderr, "listen: server holds %d streams; its live memory grew %.1f MiB: %.0f bytes per stream after GC (heap %.0f, stacks %.0f), %d goroutines\n",
				after.Connected, float64(grown)/(1<<20), float64(grown)/float64(max(1, streams)),
				per(after.Runtime.HeapInuseBytes, before.Runtime.HeapInuseBytes), per(after.Runtime.StackInuseBytes, before.Runtime.StackInuseBytes), after.Runtime.Goroutines)
		}
	}
	var reports []*fleet.Report
	if c.rounds > 0 {
		if client == nil {
			return nil, usageError{errors.New("-push-rounds needs -url and the API key (-api-key, or -data with an api-key file)")}
		}
		pushStart := time.Now()
		for r := 0; r < c.rounds; r++ {
			want := l.Woken() + enrolled
			for i := 0; i < len(ids); i += pushBatch {
				res, err := client.Push(ctx, ids[i:min(i+pushBatch, len(ids))]...)
				if err != nil {
					return nil, fmt.Errorf("push round %d: %w", r+1, err)
				}
				for _, pr := range res {
					if !pr.Pushed {
						return nil, fmt.Errorf("push round %d: %s not pushed: %s", r+1, pr.EnrollmentID, pr.Error)
					}
				}
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			ok := l.WaitFor(wctx, func() bool { return l.Woken() >= want })
			cancel()
			if !ok {
				return nil, fmt.Errorf("push round %d: %d of %d devices woke", r+1, l.Woken()-(want-enrolled), enrolled)
			}
		}
		reports = append(reports, l.Report(time.Since(pushStart)))
	}
	if c.hold > 0 {
		fmt.Fprintf(c.stderr, "listen: holding %d streams for %s\n", enrolled, c.hold)
		select {
		case <-ctx.Done():
		case <-time.After(c.hold):
		}
	}
	return reports, nil
}

// apiClient is the server's API with the key from -api-key or the data
// directory, or nil when there is no key or no -url.
func (c listenConfig) apiClient() *api.Client {
	key := c.apiKey
	if key == "" && c.dataDir != "" {
		if b, err := os.ReadFile(filepath.Join(c.dataDir, "api-key")); err == nil {
			key = strings.TrimSpace(string(b))
		}
	}
	if key == "" || c.base == "" {
		return nil
	}
	return api.NewClient(strings.TrimRight(c.base, "/")+"/v1", key, api.WithHTTPClient(c.httpClient))
}
