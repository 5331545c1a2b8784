package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

const deviceUsage = `mockmdm device — a virtual device for a person at a terminal

The device lives in a file (-file, default device.json) between commands.

Usage:
  mockmdm device create     [-file F] [-seed N] [-model iPad|iPhone|Mac] [-name NAME] [-supervised] [-shared-ipad]
  mockmdm device enroll     [-file F] (-url URL | -profile FILE) [-ca ca.pem | -data DIR] [-allow-http]
  mockmdm device connect    [-file F] [-ca ca.pem | -data DIR] [-user-channel]
  mockmdm device login      [-file F] -user NAME [-fullname NAME] [-mobile] [-ca ca.pem | -data DIR]
  mockmdm device logout     [-file F]
  mockmdm device declarations [-file F] [-user NAME]
  mockmdm device listen     [-file F] [-ca ca.pem | -data DIR] [-apns-url URL] [-for DURATION]
  mockmdm device show       [-file F]
  mockmdm device profiles   [-file F]
  mockmdm device transcript [-file F] [-json]
  mockmdm device remove     [-file F] [-ca ca.pem | -data DIR] [-silent] [-delete]

-ca (or -data, a mockmdm data directory holding ca.pem) is the CA the device
trusts for TLS and for calling a profile verified.
`

// deviceCmd runs "mockmdm device …".
func deviceCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stdout, deviceUsage)
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("mockmdm device "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "device.json", "file the device is kept in")
	var (
		seed       = fs.Int64("seed", time.Now().UnixNano(), "seed every identifier derives from (create)")
		model      = fs.String("model", "iPad", "iPad, iPhone or Mac (create)")
		name       = fs.String("name", "", "device name (create; default from the model and serial)")
		supervised = fs.Bool("supervised", false, "supervised device (create)")
		sharedIPad = fs.Bool("shared-ipad", false, "a Shared iPad, as ADE with a multi-user profile makes one (create; with -supervised)")
		user       = fs.String("user", "", "the user: a Managed Apple Account on a Shared iPad, a short name on a Mac (login, declarations)")
		fullName   = fs.String("fullname", "", "the user's full name (login)")
		mobile     = fs.Bool("mobile", false, "a Mac network or mobile-account user: UserAuthenticate first (login)")
		userChan   = fs.Bool("user-channel", false, "answer on the logged-in user's channel instead of the device's (connect)")
		url        = fs.String("url", "", "enrollment profile URL (enroll)")
		profile    = fs.String("profile", "", "enrollment profile file (enroll)")
		caFile     = fs.String("ca", "", "PEM CA certificate to trust")
		dataDir    = fs.String("data", "", "mockmdm data directory whose ca.pem to trust")
		allowHTTP  = fs.Bool("allow-http", false, "accept http:// MDM URLs, as a plain-HTTP harness serves (enroll)")
		asJSON     = fs.Bool("json", false, "JSON output (transcript)")
		apnsURL    = fs.String("apns-url", "", "mock APNs base URL (listen; default: the enrolled server's /apns)")
		listenFor  = fs.Duration("for", 0, "stop listening after this long (listen; default: until Ctrl-C)")
		silent     = fs.Bool("silent", false, "forget the enrollment without sending CheckOut (remove)")
		del        = fs.Bool("delete", false, "also delete the device file (remove)")
	)
	if err := parseFlags(fs, args[1:], getenv, "mockmdm device -h"); err != nil {
		return err
	}

	trust, client, err := deviceClient(*caFile, *dataDir)
	if err != nil {
		return err
	}
	opts := []device.Option{device.WithTrust(trust), device.WithAllowHTTP(*allowHTTP)}

	if sub == "create" {
		m, ok := map[string]device.Model{"ipad": device.IPad, "iphone": device.IPhone, "mac": device.Mac}[strings.ToLower(*model)]
		if !ok {
			return usageError{fmt.Errorf("-model %q: use iPad, iPhone or Mac", *model)}
		}
		if _, err := os.Stat(*file); err == nil {
			return usageError{fmt.Errorf("%s already exists: remove it or choose another -file", *file)}
		}
		dopts := append(opts, device.WithSeed(*seed), device.WithModel(m), device.WithSupervised(*supervised), device.WithSharedIPad(*sharedIPad))
		if *name != "" {
			dopts = append(dopts, device.WithName(*name))
		}
		d := device.New(client, dopts...)
		if err := d.Save(*file); err != nil {
			return err
		}
		printDevice(stdout, d, *file)
		return nil
	}

	switch sub {
	case "enroll", "connect", "listen", "show", "profiles", "transcript", "remove", "login", "logout", "declarations":
	default:
		return usageError{fmt.Errorf("unknown device command %q (see mockmdm device -h)", sub)}
	}
	d, err := device.Load(*file, client, opts...)
	if err != nil {
		return err
	}
	save := func() error { return d.Save(*file) }

	switch sub {
	case "show":
		printDevice(stdout, d, *file)
	case "enroll":
		var res *device.InstallResult
		switch {
		case (*url == "") == (*profile == ""):
			return usageError{errors.New("enroll needs exactly one of -url and -profile")}
		case *url != "":
			res, err = d.EnrollFromURL(ctx, *url)
		default:
			var b []byte
			if b, err = os.ReadFile(*profile); err == nil {
				res, err = d.Install(ctx, b)
			}
		}
		if serr := save(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		verified := "not verified"
		if res.Verified {
			verified = "verified, signed by " + res.Signer.Subject.CommonName
		} else if res.VerifyError != nil {
			verified += ": " + res.VerifyError.Error()
		}
		fmt.Fprintf(stdout, "installed %q (%s)\n", res.Profile.Identifier, verified)
		if res.Enrolled {
			e := d.Enrollment()
			fmt.Fprintf(stdout, "enrolled in %s (topic %s)\n", e.ServerURL, e.Topic)
		}
	case "connect":
		connect := d.Connect
		if *userChan {
			connect = d.ConnectUser
		}
		r, err := connect(ctx)
		if serr := save(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		for _, c := range r.Commands {
			fmt.Fprintf(stdout, "%s %s → %s\n", c.CommandUUID, c.RequestType, c.Status)
		}
		fmt.Fprintf(stdout, "%d command(s) answered\n", len(r.Commands))
	case "listen":
		return listenCmd(ctx, d, client, *apnsURL, *listenFor, save, stdout)
	case "login":
		if *user == "" {
			return usageError{errors.New("login needs -user: a Managed Apple Account on a Shared iPad, a short name on a Mac")}
		}
		login := d.LogIn
		if *mobile {
			login = d.LogInMobileUser
		}
		err := login(ctx, *user, *fullName)
		if serr := save(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		for _, u := range d.Users() {
			if u.LoggedIn {
				fmt.Fprintf(stdout, "%s logged in; the server knows the user's channel as %s\n", u.ShortName, u.EnrollmentID)
			}
		}
	case "logout":
		d.LogOut()
		if err := save(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "logged out")
	case "declarations":
		list, syncs, lastErr := d.Declarations(*user)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tIDENTIFIER\tTYPE\tACTIVE\tVALID")
		for _, h := range list {
			valid := h.Valid
			if h.Reason != "" {
				valid += " (" + h.Reason + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", h.Kind, h.Identifier, h.Type, h.Active, valid)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d sync(s)", syncs)
		if lastErr != "" {
			fmt.Fprintf(stdout, "; the last failed: %s", lastErr)
		}
		fmt.Fprintln(stdout)
	case "profiles":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IDENTIFIER\tNAME\tPAYLOADS\tMANAGED\tVERIFIED\tENCRYPTED")
		for _, p := range d.InstalledProfiles() {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%v\t%v\n", p.Identifier, p.DisplayName, len(p.Payloads), p.Managed, p.Verified, p.Encrypted)
		}
		return tw.Flush()
	case "transcript":
		ex := d.Transcript()
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ex)
		}
		for _, e := range ex {
			status := fmt.Sprint(e.StatusCode)
			if e.Err != "" {
				status = "error: " + e.Err
			}
			fmt.Fprintf(stdout, "%s  %-16s %s %s → %s (%d bytes out, %d in)\n", e.Time.UTC().Format(time.RFC3339), e.Step, e.Method, e.URL, status, len(e.Request), len(e.Response))
		}
	case "remove":
		if *silent {
			d.UnenrollSilently()
		} else if err := d.Unenroll(ctx); err != nil && !errors.Is(err, device.ErrNotEnrolled) {
			return err
		}
		if *del {
			if err := os.Remove(*file); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "unenrolled; deleted", *file)
			return nil
		}
		if err := save(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "unenrolled")
	}
	return nil
}

// deviceClient is the device's HTTP client: the system roots plus the
// given CA, a minute per request.
func deviceClient(caFile, dataDir string) (*x509.CertPool, *http.Client, error) {
	if caFile == "" && dataDir != "" {
		caFile = filepath.Join(dataDir, "ca.pem")
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	trust := x509.NewCertPool()
	if caFile != "" {
		cas, err := certs.ReadCertPEM(caFile)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("-ca %s: %w", caFile, err)}
		}
		for _, c := range cas {
			pool.AddCert(c)
			trust.AddCert(c)
		}
	}
	return trust, &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

func printDevice(w io.Writer, d *device.Device, file string) {
	m := d.Model()
	v, b := d.OS()
	fmt.Fprintf(w, "device %s (%s)\n", file, d.Name())
	fmt.Fprintf(w, "  model:      %s %s, %s %s (%s)\n", m.ProductName, m.Description, m.OSName, v, b)
	fmt.Fprintf(w, "  UDID:       %s\n  serial:     %s\n", d.UDID(), d.SerialNumber())
	if e := d.Enrollment(); e != nil {
		fmt.Fprintf(w, "  enrolled:   %s (topic %s, user enrollment %v)\n", e.ServerURL, e.Topic, e.UserEnrollment)
	} else {
		fmt.Fprintln(w, "  enrolled:   no")
	}
	fmt.Fprintf(w, "  profiles:   %d installed\n", len(d.InstalledProfiles()))
}

// listenCmd holds the device's stream at the mock APNs and connects on each
// push, as an idle device in a drawer does, printing what it answered and
// saving the device after each session.
func listenCmd(ctx context.Context, d *device.Device, client *http.Client, apnsURL string, limit time.Duration, save func() error, stdout io.Writer) error {
	e := d.Enrollment()
	if e == nil {
		return device.ErrNotEnrolled
	}
	if apnsURL == "" {
		u, err := url.Parse(e.ServerURL)
		if err != nil {
			return fmt.Errorf("the enrolled ServerURL %q: %w", e.ServerURL, err)
		}
		apnsURL = u.Scheme + "://" + u.Host + "/apns"
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	var tlsConfig *tls.Config
	if t, ok := client.Transport.(*http.Transport); ok {
		tlsConfig = t.TLSClientConfig
	}
	err := d.ListenForPushes(ctx, apnsURL, mockapns.DialOptions{TLS: tlsConfig},
		device.OnSubscribed(func() { fmt.Fprintf(stdout, "subscribed at %s for topic %s\n", apnsURL, e.Topic) }),
		device.OnPush(func(ev device.PushEvent) {
			switch {
			case ev.Ignored != "":
				fmt.Fprintf(stdout, "push %s: %s\n", ev.Push.ID, ev.Ignored)
			case ev.Err != nil:
				fmt.Fprintf(stdout, "push %s: connect failed: %v\n", ev.Push.ID, ev.Err)
			default:
				fmt.Fprintf(stdout, "push %s: connected, %d command(s) answered in %s\n", ev.Push.ID, len(ev.Connect.Commands), ev.Latency.Round(time.Millisecond))
				for _, c := range ev.Connect.Commands {
					fmt.Fprintf(stdout, "  %s %s → %s\n", c.CommandUUID, c.RequestType, c.Status)
				}
			}
			if err := save(); err != nil {
				fmt.Fprintf(stdout, "saving the device: %v\n", err)
			}
		}))
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return save()
	}
	return err
}
