package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mockmdm/mockmdm/certs"
	"github.com/mockmdm/mockmdm/profiles"
)

const profileUsage = `mockmdm profile — decode, verify, lint and sign .mobileconfig files

Usage:
  mockmdm profile inspect FILE|URL [-ca PEM] [-json] [-platform OS] [-user-enrollment] [-supervised] [-key PEM -cert PEM]
  mockmdm profile lint    FILE|URL [-ca PEM] [-json] [-platform OS] [-user-enrollment] [-supervised]
  mockmdm profile verify  FILE|URL [-ca PEM]
  mockmdm profile sign    -in FILE -cert PEM -key PEM [-out FILE]

inspect shows whether the profile is signed and verifies, its signer chain,
every payload with its keys, and the lint findings; it fails only when the
input is not a profile. For an encrypted profile (EncryptedPayloadContent)
it names the identity the payloads are encrypted to; with that identity's
-key and -cert it decrypts them and shows and lints them. lint prints the findings and exits 1 when any has
error severity. verify exits 1 unless the profile is signed by a certificate
that chains to -ca (default: the system trust). sign wraps a profile in CMS
SignedData with the certificate (and any chain after it in the PEM file).

-platform is iOS, macOS, tvOS, visionOS or watchOS; without it, only Apple's
key schemas are checked. -user-enrollment and -supervised describe the
device (they need -platform). Inputs over 4 MiB are refused.
`

// maxProfileRead bounds what "mockmdm profile" reads from a file or URL.
const maxProfileRead = profiles.MaxProfileSize

// profileCmd runs "mockmdm profile …".
func profileCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(stdout, profileUsage)
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("mockmdm profile "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch sub {
	case "inspect", "lint", "verify":
		caFile := fs.String("ca", "", "PEM CA certificate(s) to verify the signer against and to trust for https URLs (default: the system trust)")
		var (
			asJSON            *bool
			platform          *string
			ue, sup           *bool
			idKey, idCertFile = new(string), new(string)
		)
		if sub == "inspect" {
			idKey = fs.String("key", "", "PEM private key of the device identity an encrypted profile is encrypted to")
			idCertFile = fs.String("cert", "", "PEM certificate of that identity (with -key)")
		}
		if sub != "verify" {
			asJSON = fs.Bool("json", false, "machine-readable JSON output")
			platform = fs.String("platform", "", "lint for this OS: iOS, macOS, tvOS, visionOS or watchOS")
			ue = fs.Bool("user-enrollment", false, "lint for a User Enrollment (needs -platform)")
			sup = fs.Bool("supervised", false, "lint for a supervised device (needs -platform)")
		}
		src, err := parseFlagsWithArg(fs, args[1:], getenv, "FILE|URL", "mockmdm profile -h")
		if err != nil {
			return err
		}
		trust, client, err := deviceClient(*caFile, "")
		if err != nil {
			return err
		}
		if *caFile == "" {
			trust = nil // the system trust
		}
		if sub == "verify" {
			return profileVerify(ctx, client, src, trust, stdout)
		}
		opts := profiles.LintOptions{Supervised: *sup, UserEnrollment: *ue}
		if *platform != "" {
			p, ok := profiles.NormalizePlatform(*platform)
			if !ok {
				return usageError{fmt.Errorf("-platform %q: use one of %s", *platform, strings.Join(profiles.Platforms, ", "))}
			}
			opts.Platform = p
		} else if *ue || *sup {
			return usageError{errors.New("-user-enrollment and -supervised need -platform (Apple states those rules per OS)")}
		}
		if sub == "lint" {
			return profileLint(ctx, client, src, opts, *asJSON, stdout)
		}
		var id *identityPair
		if *idKey != "" || *idCertFile != "" {
			if *idKey == "" || *idCertFile == "" {
				return usageError{errors.New("-key and -cert go together: the identity an encrypted profile is encrypted to")}
			}
			if id, err = readIdentity(*idCertFile, *idKey); err != nil {
				return err
			}
		}
		return profileInspect(ctx, client, src, trust, opts, *asJSON, id, stdout)
	case "sign":
		in := fs.String("in", "", "the profile to sign (an unsigned .mobileconfig)")
		certFile := fs.String("cert", "", "PEM signer certificate, optionally followed by its chain")
		keyFile := fs.String("key", "", "PEM private key of the signer (PKCS #1, PKCS #8 or SEC 1)")
		out := fs.String("out", "", "where to write the signed profile (default: standard output)")
		if err := parseFlags(fs, args[1:], getenv, "mockmdm profile -h"); err != nil {
			return err
		}
		if *in == "" || *certFile == "" || *keyFile == "" {
			return usageError{errors.New("sign needs -in, -cert and -key")}
		}
		return profileSign(*in, *certFile, *keyFile, *out, stdout)
	}
	return usageError{fmt.Errorf("unknown profile command %q (see mockmdm profile -h)", sub)}
}

// parseFlagsWithArg is parseFlags for a command that takes exactly one
// positional argument, before or among the flags.
func parseFlagsWithArg(fs *flag.FlagSet, args []string, getenv func(string) string, what, help string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(pos) {
	case 0:
		return "", usageError{fmt.Errorf("missing %s (see %s)", what, help)}
	case 1:
	default:
		return "", usageError{fmt.Errorf("unexpected argument %q: give one %s (see %s)", pos[1], what, help)}
	}
	return pos[0], applyEnv(fs, getenv)
}

// readProfile reads a profile from a file or an http(s) URL, at most
// maxProfileRead bytes.
func readProfile(ctx context.Context, client *http.Client, src string) ([]byte, error) {
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s (expected 200 with a profile)", src, resp.Status)
		}
		return readBounded(resp.Body, src)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > maxProfileRead {
		return nil, fmt.Errorf("%s is %d bytes; profiles larger than %d bytes (4 MiB) are refused", src, fi.Size(), maxProfileRead)
	} else if err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a profile", src)
	}
	return readBounded(f, src)
}

func readBounded(r io.Reader, src string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxProfileRead+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	if len(b) > maxProfileRead {
		return nil, fmt.Errorf("%s is larger than %d bytes (4 MiB); larger profiles are refused", src, maxProfileRead)
	}
	return b, nil
}

func loadProfile(ctx context.Context, client *http.Client, src string) (*profiles.Parsed, error) {
	b, err := readProfile(ctx, client, src)
	if err != nil {
		return nil, err
	}
	p, err := profiles.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return p, nil
}

// verifyProfile checks the signer against trust, or the system trust when
// trust is nil.
func verifyProfile(p *profiles.Parsed, trust *x509.CertPool) error {
	if trust == nil {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			return fmt.Errorf("no system trust store to verify against (%v); give -ca", err)
		}
		trust = sys
	}
	return p.VerifyChain(trust, time.Time{})
}

func profileVerify(ctx context.Context, client *http.Client, src string, trust *x509.CertPool, stdout io.Writer) error {
	p, err := loadProfile(ctx, client, src)
	if err != nil {
		return err
	}
	if !p.Signed {
		return fmt.Errorf("%s is not signed", src)
	}
	if err := verifyProfile(p, trust); err != nil {
		return fmt.Errorf("%s does not verify: %w", src, err)
	}
	fmt.Fprintf(stdout, "%s: verified, signed by %s\n", src, p.Signer.Subject)
	return nil
}

func profileLint(ctx context.Context, client *http.Client, src string, opts profiles.LintOptions, asJSON bool, stdout io.Writer) error {
	p, err := loadProfile(ctx, client, src)
	if err != nil {
		return err
	}
	fs := profiles.Lint(p, opts)
	if asJSON {
		if fs == nil {
			fs = []profiles.Finding{}
		}
		if err := writeJSON(stdout, fs); err != nil {
			return err
		}
	} else {
		for _, f := range fs {
			fmt.Fprintln(stdout, f)
		}
		fmt.Fprintf(stdout, "%s: %s\n", src, countFindings(fs))
	}
	if n := countSeverity(fs, profiles.SeverityError); n > 0 {
		return fmt.Errorf("%s: %d lint error(s)", src, n)
	}
	return nil
}

func countSeverity(fs []profiles.Finding, sev string) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

func countFindings(fs []profiles.Finding) string {
	if len(fs) == 0 {
		return "no findings"
	}
	return fmt.Sprintf("%d error(s), %d warning(s)", countSeverity(fs, profiles.SeverityError), countSeverity(fs, profiles.SeverityWarning))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// inspection is "mockmdm profile inspect -json".
type inspection struct {
	Source       string             `json:"source"`
	Size         int                `json:"size"`
	Signed       bool               `json:"signed"`
	Verified     bool               `json:"verified"`
	VerifyError  string             `json:"verify_error,omitempty"`
	Certificates []certSummary      `json:"certificates,omitempty"`
	Profile      payloadSummary     `json:"profile"`
	Payloads     []payloadSummary   `json:"payloads"`
	Findings     []profiles.Finding `json:"findings"`
	// Encrypted profiles: to whom, and whether -key/-cert opened them.
	Encrypted  bool     `json:"encrypted,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	Decrypted  bool     `json:"decrypted,omitempty"`
}

// identityPair is the -cert and -key of "profile inspect".
type identityPair struct {
	cert *x509.Certificate
	key  crypto.PrivateKey
}

func readIdentity(certFile, keyFile string) (*identityPair, error) {
	cs, err := certs.ReadCertPEM(certFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("-cert %s: %w", certFile, err)}
	}
	if len(cs) == 0 {
		return nil, usageError{fmt.Errorf("-cert %s holds no certificate", certFile)}
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("-key %s: %w", keyFile, err)}
	}
	return &identityPair{cert: cs[0], key: key}, nil
}

type certSummary struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Signer    bool      `json:"signer,omitempty"`
}

type payloadSummary struct {
	Type       string            `json:"type"`
	Identifier string            `json:"identifier"`
	UUID       string            `json:"uuid"`
	Keys       map[string]string `json:"keys"`
}

func summarize(d map[string]any) payloadSummary {
	s := payloadSummary{Keys: map[string]string{}}
	s.Type, _ = d["PayloadType"].(string)
	s.Identifier, _ = d["PayloadIdentifier"].(string)
	s.UUID, _ = d["PayloadUUID"].(string)
	for k, v := range d {
		s.Keys[k] = shortValue(v)
	}
	return s
}

func profileInspect(ctx context.Context, client *http.Client, src string, trust *x509.CertPool, opts profiles.LintOptions, asJSON bool, id *identityPair, stdout io.Writer) error {
	p, err := loadProfile(ctx, client, src)
	if err != nil {
		return err
	}
	in := inspection{Source: src, Size: len(p.Raw), Signed: p.Signed, Encrypted: p.IsEncrypted()}
	shown := p // what the payloads and lint are of: the decrypted profile when -key opens it
	if in.Encrypted {
		rs, err := p.Recipients()
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		for _, r := range rs {
			in.Recipients = append(in.Recipients, r.String())
		}
		if id != nil {
			dec, err := profiles.Decrypt(p.Raw, id.cert, id.key)
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if shown, err = profiles.Parse(dec); err != nil {
				return fmt.Errorf("%s: the decrypted profile: %w", src, err)
			}
			in.Decrypted = true
		}
	}
	in.Findings = profiles.Lint(shown, opts)
	if in.Findings == nil {
		in.Findings = []profiles.Finding{}
	}
	if p.Signed {
		if err := verifyProfile(p, trust); err != nil {
			in.VerifyError = err.Error()
		} else {
			in.Verified = true
		}
		for _, c := range p.Certificates {
			in.Certificates = append(in.Certificates, certSummary{Subject: c.Subject.String(), Issuer: c.Issuer.String(),
				NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Signer: c.Equal(p.Signer)})
		}
	}
	top := make(map[string]any, len(p.Top))
	for k, v := range p.Top {
		if k != "PayloadContent" {
			top[k] = v
		}
	}
	in.Profile = summarize(top)
	in.Payloads = make([]payloadSummary, 0, len(shown.Payloads))
	for _, pl := range shown.Payloads {
		in.Payloads = append(in.Payloads, summarize(pl))
	}
	if asJSON {
		return writeJSON(stdout, in)
	}

	fmt.Fprintf(stdout, "profile %s (%d bytes)\n", src, in.Size)
	if !p.Signed {
		fmt.Fprintln(stdout, "  signed:    no")
	} else {
		fmt.Fprintf(stdout, "  signed:    yes, by %s\n", p.Signer.Subject)
		trustName := "the system trust"
		if trust != nil {
			trustName = "-ca"
		}
		if in.Verified {
			fmt.Fprintf(stdout, "  verified:  yes, against %s\n", trustName)
		} else {
			fmt.Fprintf(stdout, "  verified:  no, against %s: %s\n", trustName, in.VerifyError)
		}
		fmt.Fprintln(stdout, "  certificates in the signature:")
		for _, c := range in.Certificates {
			mark := ""
			if c.Signer {
				mark = " (signer)"
			}
			fmt.Fprintf(stdout, "    %s%s\n      issuer %s, valid %s to %s\n", c.Subject, mark, c.Issuer,
				c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly))
		}
	}
	if in.Encrypted {
		fmt.Fprintf(stdout, "  encrypted: yes, to %s\n", strings.Join(in.Recipients, "; "))
		if !in.Decrypted {
			fmt.Fprintln(stdout, "  (the payloads are in EncryptedPayloadContent: give -key and -cert of that identity to see them)")
		} else {
			fmt.Fprintln(stdout, "  decrypted: yes, with -key and -cert")
		}
	}
	printKeys(stdout, "  ", in.Profile)
	fmt.Fprintf(stdout, "payloads: %d\n", len(in.Payloads))
	for i, s := range in.Payloads {
		fmt.Fprintf(stdout, "  [%d] %s  %s  %s\n", i, s.Type, s.Identifier, s.UUID)
		printKeys(stdout, "      ", s)
	}
	fmt.Fprintf(stdout, "lint: %s\n", countFindings(in.Findings))
	for _, f := range in.Findings {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return nil
}

// printKeys prints a payload's keys, sorted, without the three its header
// line shows.
func printKeys(w io.Writer, indent string, s payloadSummary) {
	names := make([]string, 0, len(s.Keys))
	for k := range s.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name := shortString(k, 64)
		if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
			name = strconv.QuoteToGraphic(name)
		}
		fmt.Fprintf(w, "%s%s = %s\n", indent, name, s.Keys[k])
	}
}

// shortValue renders a plist value on one line, shortened.
func shortValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.QuoteToGraphic(shortString(x, 80))
	case []byte:
		return fmt.Sprintf("<data, %d bytes>", len(x))
	case []any:
		return fmt.Sprintf("<array, %d items>", len(x))
	case map[string]any:
		return fmt.Sprintf("<dictionary, %d keys>", len(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case nil:
		return "<nothing>"
	}
	return shortString(fmt.Sprint(v), 80)
}

func shortString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func profileSign(in, certFile, keyFile, out string, stdout io.Writer) error {
	b, err := readProfile(context.Background(), &http.Client{Timeout: time.Minute}, in)
	if err != nil {
		return err
	}
	p, err := profiles.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if p.Signed {
		return fmt.Errorf("%s is already signed; sign the unsigned profile", in)
	}
	chain, err := certs.ReadCertPEM(certFile)
	if err != nil {
		return usageError{fmt.Errorf("-cert %s: %w", certFile, err)}
	}
	if len(chain) == 0 {
		return usageError{fmt.Errorf("-cert %s holds no certificate", certFile)}
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return usageError{fmt.Errorf("-key %s: %w", keyFile, err)}
	}
	der, err := profiles.Sign(b, chain[0], key, chain[1:]...)
	if err != nil {
		return err
	}
	if out == "" {
		_, err := stdout.Write(der)
		return err
	}
	return os.WriteFile(out, der, 0o644)
}

// readPrivateKey reads the first private key of a PEM file: PKCS #8,
// PKCS #1 (RSA) or SEC 1 (EC).
func readPrivateKey(path string) (crypto.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found")
		}
		switch block.Type {
		case "PRIVATE KEY":
			return x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		}
	}
}
