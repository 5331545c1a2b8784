package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/device/fleet"
)

// fleetCmd runs "mockmdm fleet": N virtual devices enroll against a server
// and run connect cycles; it ends with throughput, per-step latency
// percentiles and errors by cause.
func fleetCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockmdm fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url         = fs.String("url", "", "server base URL (its /enroll is used), e.g. https://127.0.0.1:8443")
		enrollURL   = fs.String("enroll-url", "", "enrollment profile URL (instead of -url)")
		caFile      = fs.String("ca", "", "PEM CA certificate to trust")
		dataDir     = fs.String("data", "", "mockmdm data directory whose ca.pem to trust")
		n           = fs.Int("n", 100, "number of devices")
		concurrency = fs.Int("concurrency", 32, "devices working at once")
		cycles      = fs.Int("cycles", 1, "connect cycles per device after enrolling")
		seed        = fs.Int64("seed", 1, "seed of the first device (devices are seed, seed+1, …)")
		keySize     = fs.Int("key-size", 2048, "RSA key size of the device identities (1024 is fast for large fleets)")
		allowHTTP   = fs.Bool("allow-http", false, "accept http:// MDM URLs (plain-HTTP harness)")
		asJSON      = fs.Bool("json", false, "print the reports as JSON")
		progress    = fs.Bool("progress", false, "draw a progress bar on stderr")
		mem         = fs.Bool("mem", false, "report the fleet's memory per enrolled device")
		listen      = fs.Bool("listen", false, "after enrolling, keep every device subscribed at the server's mock APNs (<url>/apns)")
		apnsURL     = fs.String("apns-url", "", "mock APNs base URL for -listen (default: <url>/apns)")
		pushRounds  = fs.Int("push-rounds", 0, "with -listen: push every device this many times through the API and wait for each to wake and connect")
		apiKey      = fs.String("api-key", "", "API key for -push-rounds (default: <data>/api-key)")
		hold        = fs.Duration("hold", 0, "with -listen: keep the streams open this long before stopping (to measure the server)")
	)
	if err := parseFlags(fs, args, getenv, "mockmdm fleet -h"); err != nil {
		return err
	}
	switch {
	case *enrollURL == "" && *url == "":
		return usageError{errors.New("give -url (the server's base URL) or -enroll-url")}
	case *n < 1 || *n > 1_000_000:
		return usageError{fmt.Errorf("-n %d: from 1 to 1,000,000 devices", *n)}
	case *concurrency < 1 || *concurrency > 10_000:
		return usageError{fmt.Errorf("-concurrency %d: from 1 to 10,000", *concurrency)}
	case *cycles < 0:
		return usageError{fmt.Errorf("-cycles %d: 0 or more", *cycles)}
	case *keySize != 1024 && *keySize != 2048 && *keySize != 4096:
		return usageError{fmt.Errorf("-key-size %d: 1024, 2048 or 4096", *keySize)}
	}
	if *enrollURL == "" {
		*enrollURL = strings.TrimRight(*url, "/") + "/enroll"
	}
	trust, client, err := deviceClient(*caFile, *dataDir)
	if err != nil {
		return err
	}
	if t, ok := client.Transport.(*http.Transport); ok {
		// Keep a connection per worker instead of reconnecting (and
		// re-handshaking TLS) for most requests.
		t.MaxIdleConnsPerHost = *concurrency
	}

	var bar func(phase string, done, total int)
	if *progress {
		bar = func(phase string, done, total int) {
			if done%max(1, total/200) != 0 && done != total {
				return
			}
			width := 40
			filled := width * done / total
			fmt.Fprintf(stderr, "\r%-8s [%s%s] %d/%d", phase, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	heapBefore := heapInUse()
	f := fleet.New(client, *n, fleet.WithSeedBase(*seed), fleet.WithProgress(bar),
		fleet.WithDeviceOptions(device.WithTrust(trust), device.WithKeySize(*keySize), device.WithAllowHTTP(*allowHTTP), device.WithRequestTimeout(2*time.Minute)))
	reports := []*fleet.Report{f.Enroll(ctx, *enrollURL, *concurrency)}
	perDevice := 0.0
	if *mem {
		perDevice = float64(heapInUse()-heapBefore) / float64(*n)
	}
	if *cycles > 0 && ctx.Err() == nil {
		reports = append(reports, f.Connect(ctx, *cycles, *concurrency))
	}
	if *listen && ctx.Err() == nil {
		rep, err := listenPhase(ctx, f, listenConfig{
			base: *url, apnsURL: *apnsURL, trust: trust, rounds: *pushRounds,
			apiKey: *apiKey, dataDir: *dataDir, hold: *hold, stderr: stderr, httpClient: client,
		})
		if err != nil {
			return err
		}
		reports = append(reports, rep...)
	}
	if *asJSON {
		fmt.Fprint(stdout, "[")
		for i, r := range reports {
			b, err := r.JSON()
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprint(stdout, ",")
			}
			stdout.Write(b)
		}
		fmt.Fprintln(stdout, "]")
	} else {
		for _, r := range reports {
			r.WriteText(stdout)
		}
		if *mem {
			fmt.Fprintf(stdout, "memory: %.1f KiB heap in use per enrolled device (client side)\n", perDevice/1024)
		}
	}
	if reports[0].Failed > 0 {
		return fmt.Errorf("%d of %d devices failed to enroll", reports[0].Failed, *n)
	}
	return nil
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
