package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/checkin"
	"github.com/mockmdm/mockmdm/push/mockapns"
	"github.com/mockmdm/mockmdm/server"
	"github.com/mockmdm/mockmdm/store"
	"github.com/mockmdm/mockmdm/store/memory"
	"github.com/mockmdm/mockmdm/store/sqlite"
	"github.com/mockmdm/mockmdm/webhook"
)

type serveFlags struct {
	dataDir          string
	listen           string
	httpListen       string
	publicURL        string
	hosts            string
	storeKind        string
	apiKey           string
	scepChallenge    string
	identityValidity time.Duration
	accountTokenTTL  time.Duration
	signingSkew      time.Duration
	userAuth         string
	logLevel         string
	logFormat        string
	showVersion      bool
	grace            time.Duration
	pushURL          string
	pushExpiration   time.Duration
	pushIssuer       string
	apnsListen       string
	apnsNoExpiration string
	caKeySize        int
	cpuProfile       string
	faultsFile       string
	directoryFile    string
	machineInfo      string
	webhookURLs      listFlag
	webhookSecret    string
	webhookAttempts  int
}

// listFlag is a repeatable flag whose values may also be comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data", "mockmdm-data", "data directory: CA, certificates, API key, SQLite store (created if missing)")
	fs.StringVar(&f.listen, "listen", ":8443", "HTTPS listen address (empty: no HTTPS)")
	fs.StringVar(&f.httpListen, "http-listen", "", "plain-HTTP listen address for test harnesses (empty: none)")
	fs.StringVar(&f.publicURL, "url", "", "base URL devices use to reach this server (default: https://<first host>:<port>)")
	fs.StringVar(&f.hosts, "hosts", "", "comma-separated DNS names and IPs for the TLS certificate (default: localhost, loopback, this machine's name and addresses)")
	fs.StringVar(&f.storeKind, "store", "sqlite", "store: sqlite (in the data directory) or memory (lost at exit)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key for /v1 (default: generated once and kept in the data directory)")
	fs.StringVar(&f.scepChallenge, "scep-challenge", "", "static SCEP challenge put in the enrollment profile (default: generated once and kept)")
	fs.DurationVar(&f.identityValidity, "identity-validity", 365*24*time.Hour, "lifetime of SCEP-issued device identities (e.g. 10m, 720h)")
	fs.DurationVar(&f.accountTokenTTL, "account-token-lifetime", 24*time.Hour, "lifetime of an account-driven enrollment's access token; past it the device must sign its user in again (at least 1m)")
	fs.DurationVar(&f.signingSkew, "signing-skew", time.Hour, "how far an Mdm-Signature signing time may be from the server clock (0: no check)")
	fs.StringVar(&f.userAuth, "user-authenticate", "decline", "UserAuthenticate answer: decline (410) or allow")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.DurationVar(&f.grace, "shutdown-grace", 10*time.Second, "how long requests in flight may take to finish at shutdown")
	fs.StringVar(&f.pushURL, "push-url", "mock", "where pushes go: mock (the mock APNs in this process), production or development (Apple), or an APNs base URL")
	fs.DurationVar(&f.pushExpiration, "push-expiration", -1, "apns-expiration the provider sends: a duration from now, 0 (deliver once, never store), or negative (omit the header)")
	fs.StringVar(&f.pushIssuer, "push-issuer", "", "PEM file of extra issuers an uploaded push certificate may chain to (Apple's push CA for a real certificate)")
	fs.StringVar(&f.apnsListen, "apns-listen", "", "also serve the mock APNs alone on this address (TLS, HTTP/2, Apple's paths); it is always at <url>/apns")
	fs.StringVar(&f.faultsFile, "faults", "", "YAML or JSON file of fault rules for the device endpoints, loaded at start (see POST /v1/faults)")
	fs.StringVar(&f.machineInfo, "machineinfo-verify", string(certs.VerifySignature), "how the ADE enrollment endpoints check a device's signed MachineInfo: off, signature (the signature only, as MicroMDM does), or strict (also chained to the mock Apple device CA, within its validity)")
	fs.StringVar(&f.directoryFile, "directory", "", "YAML or JSON organisation for the BYOD enrollment programs (users, groups, enrollment type profiles, settings), loaded at start and again after POST /v1/reset")
	fs.Var(&f.webhookURLs, "webhook-url", "send MicroMDM-format webhook events to this http(s) URL (repeat the flag or give a comma list for several)")
	fs.StringVar(&f.webhookSecret, "webhook-secret", "", "sign webhook bodies with HMAC-SHA256 under this secret, base64 in the X-Hmac-Signature header (empty: unsigned)")
	fs.IntVar(&f.webhookAttempts, "webhook-max-attempts", webhook.DefaultMaxAttempts, "attempts per webhook delivery before it is logged as failed (at least 1)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	fs.IntVar(&f.caKeySize, "ca-key-size", 2048, "RSA size of the test CA when it is created (2048, 3072 or 4096; an existing CA keeps its own)")
	fs.StringVar(&f.apnsNoExpiration, "apns-no-expiration", "store:720h", "what the mock APNs does with a push without apns-expiration: store:<duration> (keep it that long for an offline device) or once (deliver only to a connected device)")
}

// applyEnv sets every flag not given on the command line from MOCKMDM_<NAME>
// (upper case, dashes as underscores).
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "MOCKMDM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookup(getenv, env); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", env, v, serr)}
			}
		}
	})
	return err
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := flag.NewFlagSet("mockmdm serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	if err := parseFlags(fs, args, getenv, "mockmdm -h"); err != nil {
		return err
	}
	if f.showVersion {
		fmt.Fprintln(stdout, "mockmdm", version)
		return nil
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return usageError{fmt.Errorf("-cpuprofile: %w", err)}
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return usageError{err}
	}
	var policy checkin.UserAuthenticatePolicy
	switch f.userAuth {
	case "decline", "allow":
		policy = checkin.UserAuthenticatePolicy(f.userAuth)
	default:
		return usageError{fmt.Errorf("-user-authenticate %q: use decline or allow", f.userAuth)}
	}
	apnsPolicy, err := parseExpiryPolicy(f.apnsNoExpiration)
	if err != nil {
		return usageError{err}
	}
	machineInfo, err := certs.ParseMachineInfoVerify(f.machineInfo)
	if err != nil {
		return usageError{fmt.Errorf("-machineinfo-verify: %w", err)}
	}
	if f.webhookAttempts < 1 {
		return usageError{fmt.Errorf("-webhook-max-attempts %d: at least 1", f.webhookAttempts)}
	}
	if _, err := webhook.ParseURLs(f.webhookURLs); err != nil {
		return usageError{fmt.Errorf("-webhook-url: %v", err)}
	}
	if f.listen == "" && f.httpListen == "" {
		return usageError{fmt.Errorf("nothing to listen on: set -listen (HTTPS) or -http-listen")}
	}

	var httpsLn, httpLn, apnsLn net.Listener
	if f.listen != "" {
		if httpsLn, err = net.Listen("tcp", f.listen); err != nil {
			return fmt.Errorf("HTTPS listener: %w", err)
		}
		defer httpsLn.Close()
	}
	if f.httpListen != "" {
		if httpLn, err = net.Listen("tcp", f.httpListen); err != nil {
			return fmt.Errorf("HTTP listener: %w", err)
		}
		defer httpLn.Close()
	}

	if f.apnsListen != "" {
		if apnsLn, err = net.Listen("tcp", f.apnsListen); err != nil {
			return fmt.Errorf("mock APNs listener: %w", err)
		}
		defer apnsLn.Close()
	}

	publicURL := f.publicURL
	hosts := splitList(f.hosts)
	if len(hosts) == 0 {
		hosts = defaultHosts()
	}
	if publicURL == "" {
		publicURL = defaultPublicURL(hosts, httpsLn, httpLn)
	}
	if h := hostOf(publicURL); h != "" && !contains(hosts, h) {
		hosts = append(hosts, h)
	}

	if f.caKeySize != 2048 && f.caKeySize != 3072 && f.caKeySize != 4096 {
		return usageError{fmt.Errorf("-ca-key-size %d: use 2048, 3072 or 4096", f.caKeySize)}
	}
	pki, err := server.LoadOrCreatePKI(f.dataDir, hosts, server.WithCAKeyBits(f.caKeySize))
	if err != nil {
		return err
	}
	if f.apiKey != "" {
		pki.APIKey = f.apiKey
	}
	if f.scepChallenge != "" {
		pki.SCEPChallenge = f.scepChallenge
	}

	var st store.Store
	switch f.storeKind {
	case "sqlite":
		st, err = sqlite.Open(ctx, filepath.Join(f.dataDir, "mockmdm.db"))
		if err != nil {
			return fmt.Errorf("opening the SQLite store: %w", err)
		}
	case "memory":
		st = memory.New()
	default:
		return usageError{fmt.Errorf("-store %q: use sqlite or memory", f.storeKind)}
	}
	defer st.Close()

	opts := []server.Option{
		server.WithLogger(logger),
		server.WithIdentityValidity(f.identityValidity),
		server.WithAccountTokenLifetime(f.accountTokenTTL),
		server.WithSigningTimeSkew(f.signingSkew),
		server.WithUserAuthenticate(policy),
		server.WithVersion(version),
		server.WithPushTarget(f.pushURL, nil),
		server.WithPushExpiration(f.pushExpiration),
		server.WithAPNsExpiryPolicy(apnsPolicy),
		server.WithADEFlow(server.ADEFlowConfig{Verify: machineInfo}),
	}
	if len(f.webhookURLs) > 0 || f.webhookSecret != "" {
		opts = append(opts, server.WithWebhook(f.webhookURLs,
			webhook.WithSecret(f.webhookSecret), webhook.WithMaxAttempts(f.webhookAttempts)))
	}
	if f.pushIssuer != "" {
		issuers, err := certs.ReadCertPEM(f.pushIssuer)
		if err != nil || len(issuers) == 0 {
			return usageError{fmt.Errorf("-push-issuer %s: not a PEM file of certificates (%v)", f.pushIssuer, err)}
		}
		opts = append(opts, server.WithPushIssuers(issuers...))
	}
	if f.directoryFile != "" {
		data, err := os.ReadFile(f.directoryFile)
		if err != nil {
			return usageError{fmt.Errorf("-directory: %w", err)}
		}
		opts = append(opts, server.WithDirectory(filepath.Base(f.directoryFile), data))
	}
	srv, err := server.New(st, pki, publicURL, opts...)
	if err != nil {
		return usageError{err}
	}
	if f.faultsFile != "" {
		n, err := loadFaults(srv.Faults(), f.faultsFile)
		if err != nil {
			return usageError{err}
		}
		logger.Info("fault rules loaded", "file", f.faultsFile, "rules", n)
	}

	absData, _ := filepath.Abs(f.dataDir)
	fmt.Fprintf(stdout, "mockmdm %s\n", version)
	if len(pki.Created) > 0 {
		fmt.Fprintf(stdout, "  created:        %s\n", strings.Join(pki.Created, ", "))
	}
	fmt.Fprintf(stdout, "  data directory: %s (%s store)\n", absData, f.storeKind)
	if httpsLn != nil {
		fmt.Fprintf(stdout, "  HTTPS:          %s\n", httpsLn.Addr())
	}
	if httpLn != nil {
		fmt.Fprintf(stdout, "  HTTP:           %s\n", httpLn.Addr())
	}
	fmt.Fprintf(stdout, "  enrollment URL: %s\n", srv.URL(server.PathEnroll))
	fmt.Fprintf(stdout, "  CA download:    %s\n", srv.URL(server.PathCA))
	fmt.Fprintf(stdout, "  dashboard:      %s (log in with the API key)\n", srv.URL("/dashboard"))
	fmt.Fprintf(stdout, "  Company Portal: %s (BYOD; web-based enrollment: %s)\n", srv.URL("/portal"), srv.URL("/enroll/web"))
	fmt.Fprintf(stdout, "  ADE API:        %s (point a DEP client here; token certificate: %s)\n", srv.URL(""), srv.URL("/v1/ade/token-certificate"))
	fmt.Fprintf(stdout, "  API:            %s (header \"Authorization: Bearer <key>\")\n", srv.URL("/v1"))
	fmt.Fprintf(stdout, "  API key:        %s\n", pki.APIKey)
	fmt.Fprintf(stdout, "  push topic:     %s\n", srv.Topic())
	fmt.Fprintf(stdout, "  mock APNs:      %s\n", srv.URL(server.PathAPNs))
	if apnsLn != nil {
		fmt.Fprintf(stdout, "  mock APNs port: %s\n", apnsLn.Addr())
	}
	if urls := srv.Webhook().URLs(); len(urls) > 0 {
		fmt.Fprintf(stdout, "  webhooks:       %s\n", strings.Join(urls, ", "))
	}
	fmt.Fprintf(stdout, "  metrics:        %s (same API key)\n", srv.URL(server.PathMetrics))
	fmt.Fprintln(stdout, "ready")
	logger.Info("serving", "url", publicURL, "store", f.storeKind)

	err = srv.ServeWithAPNs(ctx, httpsLn, httpLn, apnsLn, f.grace)
	logger.Info("stopped")
	return err
}

// parseExpiryPolicy reads -apns-no-expiration: "once" or "store:<duration>".
func parseExpiryPolicy(v string) (mockapns.ExpiryPolicy, error) {
	if v == "once" {
		return mockapns.ExpiryPolicy{Store: false}, nil
	}
	if d, ok := strings.CutPrefix(v, "store:"); ok {
		dur, err := time.ParseDuration(d)
		if err == nil && dur > 0 {
			return mockapns.ExpiryPolicy{Store: true, StoreFor: dur}, nil
		}
	}
	return mockapns.ExpiryPolicy{}, fmt.Errorf("-apns-no-expiration %q: use once, or store:<duration> such as store:720h", v)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: use text or json", format)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// defaultHosts names this machine every way a device might reach it: the
// first non-loopback address first, since that is what a real iPad uses.
func defaultHosts() []string {
	var hosts []string
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() && ipn.IP.To4() != nil {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" && name != "localhost" {
		hosts = append(hosts, name)
	}
	return append(hosts, "localhost", "127.0.0.1", "::1")
}

func defaultPublicURL(hosts []string, httpsLn, httpLn net.Listener) string {
	scheme, ln := "https", httpsLn
	if ln == nil {
		scheme, ln = "http", httpLn
	}
	host := "localhost"
	if len(hosts) > 0 {
		host = hosts[0]
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	return scheme + "://" + net.JoinHostPort(host, port)
}

func hostOf(rawURL string) string {
	rest, ok := strings.CutPrefix(rawURL, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(rawURL, "http://")
	}
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if h, _, err := net.SplitHostPort(rest); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(rest, "[]")
}

// loadFaults adds the rules of a YAML or JSON file ({"rules": [...]}, the
// fields of POST /v1/faults) to faults, and returns how many it added.
func loadFaults(faults *checkin.Faults, path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("-faults: %w", err)
	}
	if len(raw) > 1<<20 {
		return 0, fmt.Errorf("-faults %s: %d bytes; a rule file is at most 1 MiB", path, len(raw))
	}
	rules, err := checkin.ParseFaultRules(raw)
	if err != nil {
		return 0, fmt.Errorf("-faults %s: %v", path, err)
	}
	for i, rule := range rules {
		if _, err := faults.Add(rule); err != nil {
			return 0, fmt.Errorf("-faults %s: rule %d: %v", path, i+1, err)
		}
	}
	return len(rules), nil
}
