package certs

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs1PEM(key *rsa.PrivateKey) []byte {
	return pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func pkcs8PEM(tb testing.TB, key any) []byte { return pemBlock("PRIVATE KEY", mustPKCS8(tb, key)) }

func certPEM(certs ...*x509.Certificate) []byte { return []byte(certsPEM(certs...)) }

// legacyEncryptedPEM encrypts key the old OpenSSL way (Proc-Type:
// 4,ENCRYPTED, DEK-Info AES-256-CBC), as "openssl rsa -aes256" did before 3.0.
func legacyEncryptedPEM(tb testing.TB, key *rsa.PrivateKey, password string) []byte {
	tb.Helper()
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(password), x509.PEMCipherAES256) //nolint:staticcheck // making the legacy files people upload
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func mustP12(tb testing.TB, enc *pkcs12.Encoder, key any, cert *x509.Certificate, chain []*x509.Certificate, password string) []byte {
	tb.Helper()
	der, err := enc.Encode(key, cert, chain, password)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParsePushCredentials(t *testing.T) {
	f := pushFix(t)
	key, cert, ca := f.customerKey, f.pushCert, f.ca.Cert
	chain := []*x509.Certificate{ca}
	pkcs8InRSALabel := pemBlock("RSA PRIVATE KEY", mustPKCS8(t, key))
	for _, tc := range []struct {
		name      string
		cert, key []byte
		password  string
		chainLen  int
	}{
		{"PEM certificate, PKCS#1 key", certPEM(cert), pkcs1PEM(key), "", 0},
		{"PEM certificate, PKCS#8 key", certPEM(cert), pkcs8PEM(t, key), "", 0},
		{"PEM certificate and chain", certPEM(cert, ca), pkcs1PEM(key), "", 1},
		{"combined PEM, key first, chain before the leaf", concat(pkcs8PEM(t, key), certPEM(ca, cert)), nil, "", 1},
		{"combined PEM with a stray key, and the right key file", concat(certPEM(cert), pkcs1PEM(f.otherKey)), pkcs1PEM(key), "", 0},
		{"DER certificate, PEM key", cert.Raw, pkcs1PEM(key), "", 0},
		{"PKCS#12 (Modern) with a password", mustP12(t, pkcs12.Modern, key, cert, chain, "s3cret"), nil, "s3cret", 1},
		{"PKCS#12 (LegacyDES)", mustP12(t, pkcs12.LegacyDES, key, cert, chain, "s3cret"), nil, "s3cret", 1},
		{"PKCS#12 (Modern2026, PBMAC1)", mustP12(t, pkcs12.Modern2026, key, cert, nil, "s3cret"), nil, "s3cret", 0},
		{"PKCS#12 with an empty password", mustP12(t, pkcs12.Modern, key, cert, nil, ""), nil, "", 0},
		{"PKCS#12 without encryption", mustP12(t, pkcs12.Passwordless, key, cert, nil, ""), nil, "", 0},
		{"PKCS#12 and a separate key file", mustP12(t, pkcs12.Modern, f.otherKey, f.tlsCert, []*x509.Certificate{cert}, "pw"), pkcs1PEM(key), "pw", 1},
		{"legacy-encrypted PEM key with its password", certPEM(cert), legacyEncryptedPEM(t, key, "s3cret"), "s3cret", 0},
		{"legacy-encrypted key in a combined PEM", concat(certPEM(cert), legacyEncryptedPEM(t, key, "s3cret")), nil, "s3cret", 0},
		{"PKCS#8 key labelled RSA PRIVATE KEY", certPEM(cert), pkcs8InRSALabel, "", 0},
		{"key file with CRLF and text around", certPEM(cert), concat([]byte("Bag Attributes\r\n"), bytes.ReplaceAll(pkcs1PEM(key), []byte("\n"), []byte("\r\n"))), "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParsePushCredentials(tc.cert, tc.key, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Cert.Equal(cert) || !c.Key.Equal(key) || c.Topic != f.topic || len(c.Chain) != tc.chainLen {
				t.Fatalf("got cert %q, topic %q, %d chain certificates; want the push certificate, %q, %d", c.Cert.Subject, c.Topic, len(c.Chain), f.topic, tc.chainLen)
			}
		})
	}
}

func TestParsePushCredentialsRefusals(t *testing.T) {
	f := pushFix(t)
	key, cert, ca := f.customerKey, f.pushCert, f.ca.Cert
	p12 := mustP12(t, pkcs12.Modern, key, cert, []*x509.Certificate{ca}, "s3cret")
	trustStore, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{cert}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := f.ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "EC push"}}, &f.ecKey.PublicKey, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(f.ecKey)
	if err != nil {
		t.Fatal(err)
	}
	hugeCert, err := f.ca.issue(&x509.Certificate{Subject: pkix.Name{CommonName: "Huge"}}, hugeRSAKey(t).Public(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	encryptedPKCS8 := pemBlock("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x00})

	for _, tc := range []struct {
		name      string
		cert, key []byte
		password  string
		kind      error
		phrase    string
	}{
		{"no certificate", nil, nil, "", ErrPushNoCert, "no certificate given"},
		{"certificate file too large", bytes.Repeat([]byte("A"), maxPushCredentialFile+1), nil, "", ErrPushNoCert, "more than the 64 KiB limit"},
		{"key file too large", certPEM(cert), bytes.Repeat([]byte("A"), maxPushCredentialFile+1), "", ErrPushNoKey, "more than the 64 KiB limit"},
		{"password too long", certPEM(cert), pkcs1PEM(key), strings.Repeat("p", maxPushPassword+1), ErrPushBadPassword, "more than 1024"},
		{"garbage", []byte("this is not a certificate"), nil, "", ErrPushNoCert, "neither PEM, a DER certificate nor a readable PKCS#12 file"},
		{"PEM without a certificate", pemBlock("PUBLIC KEY", []byte{1}), pkcs1PEM(key), "", ErrPushNoCert, "holds no PEM CERTIFICATE block"},
		{"files swapped", pkcs1PEM(key), certPEM(cert), "", ErrPushNoCert, "were the certificate and key files swapped?"},
		{"corrupt certificate", pemBlock("CERTIFICATE", []byte{0x30, 0x00}), pkcs1PEM(key), "", ErrPushNoCert, "labelled CERTIFICATE but is not a valid certificate"},
		{"certificate without a key", certPEM(cert), nil, "", ErrPushNoKey, "no private key given"},
		{"key file without a key", certPEM(cert), certPEM(ca), "", ErrPushNoKey, "the key file holds no PEM private key"},
		{"corrupt key", certPEM(cert), pemBlock("RSA PRIVATE KEY", []byte("junk")), "", ErrPushNoKey, "not a valid private key"},
		{"PKCS#12, wrong password", p12, nil, "wrong", ErrPushBadPassword, "the password does not open the PKCS#12 file"},
		{"PKCS#12, no password", p12, nil, "", ErrPushKeyEncrypted, "password-protected; give its password"},
		{"PKCS#12, password outside UCS-2", p12, nil, "key🔑", ErrPushBadPassword, "UCS-2"},
		{"PKCS#12 without a key", trustStore, nil, "s3cret", ErrPushNoKey, "holds a certificate but no private key"},
		{"PKCS#12 asking for too many iterations", mustP12(t, pkcs12.LegacyDES.WithIterations(maxPKCS12Iterations+1), key, cert, nil, "pw"), nil, "pw", ErrPushNoCert, "key-derivation iterations for its MAC"},
		{"PKCS#12 (PBMAC1) asking for too many iterations", mustP12(t, pkcs12.Modern2026.WithIterations(maxPKCS12Iterations+1), key, cert, nil, "pw"), nil, "pw", ErrPushNoCert, "200001 key-derivation iterations for its MAC"},
		{"PKCS#12 holding an EC key", mustP12(t, pkcs12.Modern, f.ecKey, ecCert, nil, "pw"), nil, "pw", ErrPushKeyType, "the private key is ECDSA"},
		{"legacy-encrypted key, no password", certPEM(cert), legacyEncryptedPEM(t, key, "s3cret"), "", ErrPushKeyEncrypted, "(Proc-Type: 4,ENCRYPTED); give its password"},
		{"legacy-encrypted key, wrong password", certPEM(cert), legacyEncryptedPEM(t, key, "s3cret"), "wrong", ErrPushBadPassword, "the password does not decrypt the key"},
		{"PKCS#8-encrypted key, no password", certPEM(cert), encryptedPKCS8, "", ErrPushKeyEncrypted, "openssl pkey -in key.pem -out key-decrypted.pem"},
		{"PKCS#8-encrypted key, with password", certPEM(cert), encryptedPKCS8, "s3cret", ErrPushKeyEncrypted, "cannot decrypt even with the password"},
		{"EC key as PKCS#8", certPEM(cert), pkcs8PEM(t, f.ecKey), "", ErrPushKeyType, "the private key is ECDSA; APNs MDM push certificates have RSA keys"},
		{"EC PRIVATE KEY block", certPEM(cert), pemBlock("EC PRIVATE KEY", ecDER), "", ErrPushKeyType, "(EC PRIVATE KEY): not an RSA key"},
		{"key of another certificate", certPEM(cert), pkcs1PEM(f.otherKey), "", ErrPushKeyMismatch, `does not belong to the certificate "CN=APSP:` + strings.TrimPrefix(f.topic, externalTopicPrefix) + `,C=US,UID=` + f.topic + `"`},
		{"key of none in a bundle", certPEM(cert, ca), pkcs1PEM(f.otherKey), "", ErrPushKeyMismatch, "belongs to none of the 2 certificates"},
		{"TLS server certificate", certPEM(f.tlsCert), pkcs1PEM(f.tlsKey), "", ErrNoTopic, "has no UID attribute"},
		{"UID com.example.foo", certPEM(f.fooCert), pkcs1PEM(key), "", ErrBadTopic, `UID "com.example.foo" is not an MDM push topic`},
		{"huge key in the chain", certPEM(cert, hugeCert), pkcs1PEM(key), "", ErrPushNoCert, "RSA key of 9000 bits is larger than the 8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParsePushCredentials(tc.cert, tc.key, tc.password)
			if c != nil {
				t.Fatal("credentials came back with the error")
			}
			wantRefusal(t, err, tc.kind, tc.phrase)
			t.Log(err)
		})
	}
}

// TestCheckKDFIterations reaches the parameter shapes a whole file made by
// go-pkcs12 cannot isolate (its encoders use one count for MAC and safes).
func TestCheckKDFIterations(t *testing.T) {
	salt := []byte("saltsalt")
	marshal := func(v any) asn1.RawValue {
		der, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{FullBytes: der}
	}
	pbe := func(n int) pkix.AlgorithmIdentifier {
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}, Parameters: marshal(p12PBEParams{salt, n})}
	}
	pbes2 := func(n int) pkix.AlgorithmIdentifier {
		kdf := pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: marshal(struct {
			Salt       []byte
			Iterations int
		}{salt, n})}
		aes := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}, Parameters: marshal(make([]byte, 16))}
		return pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: marshal(p12KDFAndScheme{kdf, aes})}
	}
	sha256MAC := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}
	for _, tc := range []struct {
		name    string
		alg     pkix.AlgorithmIdentifier
		macIter int
		refuse  bool
	}{
		{"PKCS#12 PBE at the limit", pbe(maxPKCS12Iterations), 0, false},
		{"PKCS#12 PBE over the limit", pbe(maxPKCS12Iterations + 1), 0, true},
		{"PBES2 at the limit", pbes2(maxPKCS12Iterations), 0, false},
		{"PBES2 over the limit", pbes2(1 << 30), 0, true},
		{"classic MAC over the limit", sha256MAC, maxPKCS12Iterations + 1, true},
		{"classic MAC", sha256MAC, 2048, false},
		{"unparsable parameters are left to go-pkcs12", pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: []byte{0x05, 0x00}}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKDFIterations("test", tc.alg, tc.macIter)
			if !tc.refuse {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRefusal(t, err, ErrPushNoCert, "key-derivation iterations for test")
		})
	}
}

func TestCheckPushCredentials(t *testing.T) {
	f := pushFix(t)
	good, err := ParsePushCredentials(certPEM(f.pushCert), pkcs1PEM(f.customerKey), "")
	if err != nil {
		t.Fatal(err)
	}
	stray, err := ParsePushCredentials(certPEM(f.strayPush), pkcs1PEM(f.customerKey), "")
	if err != nil {
		t.Fatal(err)
	}
	issuers := []*x509.Certificate{f.ca.Cert}
	now := time.Now()
	if err := CheckPushCredentials(good, issuers, now); err != nil {
		t.Fatalf("valid push certificate from the configured issuer: %v", err)
	}
	if err := CheckPushCredentials(stray, nil, now); err != nil {
		t.Fatalf("no issuers configured, so any issuer: %v", err)
	}
	if err := CheckPushCredentials(good, issuers, good.Cert.NotAfter); err != nil {
		t.Fatalf("at NotAfter the certificate is still valid: %v", err)
	}
	for _, tc := range []struct {
		name    string
		creds   *PushCredentials
		issuers []*x509.Certificate
		now     time.Time
		kind    error
		phrases []string
	}{
		{"expired", good, issuers, good.Cert.NotAfter.Add(49 * time.Hour), ErrPushExpired, []string{
			"expired on " + good.Cert.NotAfter.UTC().Format(time.RFC3339), "2 days ago", `"Renew", which keeps the topic ` + f.topic,
		}},
		{"expired a moment ago", good, issuers, good.Cert.NotAfter.Add(time.Second), ErrPushExpired, []string{"less than a day ago"}},
		{"not yet valid", good, issuers, good.Cert.NotBefore.Add(-time.Second), ErrPushNotYetValid, []string{
			"is not valid until " + good.Cert.NotBefore.UTC().Format(time.RFC3339), "check this machine's clock",
		}},
		{"issued by another CA", stray, issuers, now, ErrPushUntrustedIssuer, []string{
			`issued by "CN=some other CA,O=mockmdm"`, `does not chain to any of "CN=mock Apple push CA,O=mockmdm"`,
		}},
		{"issued by none of two", stray, []*x509.Certificate{f.ca.Cert, testCA(t).Cert}, now, ErrPushUntrustedIssuer, []string{
			`"CN=mock Apple push CA,O=mockmdm", "CN=certs test CA,O=mockmdm"`,
		}},
		{"no credentials", nil, issuers, now, ErrPushNoCert, []string{"no push certificate given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPushCredentials(tc.creds, tc.issuers, tc.now)
			for _, p := range tc.phrases {
				wantRefusal(t, err, tc.kind, p)
			}
			t.Log(err)
		})
	}
}

func TestStatusOfPushCert(t *testing.T) {
	f := pushFix(t)
	c := f.pushCert
	const day = 24 * time.Hour
	soon := 30 * day
	wantSubject := "CN=APSP:" + strings.TrimPrefix(f.topic, externalTopicPrefix) + ",C=US,UID=" + f.topic
	for _, tc := range []struct {
		name  string
		now   time.Time
		days  int
		state string
	}{
		{"valid", c.NotAfter.Add(-100 * day), 100, PushStateValid},
		{"just over soon left", c.NotAfter.Add(-soon - time.Nanosecond), 30, PushStateValid},
		{"exactly soon left", c.NotAfter.Add(-soon), 30, PushStateExpiringSoon},
		{"ten and a half days left", c.NotAfter.Add(-10*day - 12*time.Hour), 10, PushStateExpiringSoon},
		{"last moment", c.NotAfter, 0, PushStateExpiringSoon},
		{"a moment after", c.NotAfter.Add(time.Nanosecond), -1, PushStateExpired},
		{"two days and a bit after", c.NotAfter.Add(49 * time.Hour), -3, PushStateExpired},
		{"before NotBefore", c.NotBefore.Add(-time.Hour), int(c.NotAfter.Sub(c.NotBefore.Add(-time.Hour)) / day), PushStateValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StatusOfPushCert(c, tc.now, soon)
			if s.DaysLeft != tc.days || s.State != tc.state {
				t.Fatalf("days %d, state %q; want %d, %q", s.DaysLeft, s.State, tc.days, tc.state)
			}
			if s.Topic != f.topic || s.Subject != wantSubject || s.Issuer != "CN=mock Apple push CA,O=mockmdm" || !s.NotAfter.Equal(c.NotAfter) || !s.NotBefore.Equal(c.NotBefore) {
				t.Fatalf("status %+v does not describe the certificate", s)
			}
		})
	}
	if s := StatusOfPushCert(nil, time.Now(), soon); s != (PushCertStatus{}) {
		t.Fatalf("nil certificate: %+v", s)
	}
	if s := StatusOfPushCert(f.tlsCert, time.Now(), soon); s.Topic != "" || s.Subject != "CN=mdm.example.test,O=mockmdm" {
		t.Fatalf("certificate without a topic: %+v", s)
	}
	b, err := json.Marshal(StatusOfPushCert(c, c.NotAfter.Add(-100*day), soon))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"topic", "subject", "issuer", "not_before", "not_after", "days_left", "state"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
	if m["state"] != "valid" || m["days_left"] != float64(100) {
		t.Errorf("JSON %s", b)
	}
}

// TestNameString: the topic and e-mail address read as text, not as an OID
// and hex, in parsed names and in names built from fields.
func TestNameString(t *testing.T) {
	f := pushFix(t)
	for _, tc := range []struct {
		name pkix.Name
		want string
	}{
		{f.csr.Subject, "CN=Example Customer,C=US,emailAddress=admin@example.com"},
		{customerSubject(), "CN=Example Customer,C=US,emailAddress=admin@example.com"},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "com.apple.mgmt.x"}}}, "UID=com.apple.mgmt.x"},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: 7}}}, "0.9.2342.19200300.100.1.1=#020107"},
		{pkix.Name{}, ""},
	} {
		if got := nameString(tc.name); got != tc.want {
			t.Errorf("nameString = %q, want %q", got, tc.want)
		}
	}
}

// TestOpenSSLPushCredentials reads what OpenSSL — not this package, not
// go-pkcs12 — makes of a push certificate and key: a PKCS#12 file from
// "openssl pkcs12 -export", a legacy AES-encrypted PEM key from
// "openssl rsa -aes256", and a PKCS#8-encrypted one from "openssl pkey",
// whose refusal's advice is then followed to the letter.
func TestOpenSSLPushCredentials(t *testing.T) {
	bin := openssl(t)
	f := pushFix(t)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	certPath := writePEMFile(t, dir, "push.pem", f.pushCert)
	caPath := writePEMFile(t, dir, "ca.pem", f.ca.Cert)
	if err := WriteKeyPEM(path("push.key"), f.customerKey); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(path(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const password = "correct horse"
	pass := "pass:" + password

	t.Run("pkcs12 -export", func(t *testing.T) {
		args := []string{"pkcs12", "-export", "-in", certPath, "-inkey", path("push.key"), "-certfile", caPath, "-out", path("push.p12"), "-passout", pass}
		if out, err := runOpenSSL(t, bin, args...); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		c, err := ParsePushCredentials(read("push.p12"), nil, password)
		if err != nil {
			// Older OpenSSL writes RC2 by default; 3.x with -legacy does too.
			// Try -legacy only to learn whether that is the reason.
			t.Logf("default openssl pkcs12: %v; trying -legacy", err)
			if out, lerr := runOpenSSL(t, bin, append(args, "-legacy")...); lerr != nil {
				t.Fatalf("openssl pkcs12 -legacy: %v\n%s", lerr, out)
			}
			if c, err = ParsePushCredentials(read("push.p12"), nil, password); err != nil {
				t.Fatalf("openssl pkcs12 -export -legacy: %v", err)
			}
		}
		if !c.Cert.Equal(f.pushCert) || !c.Key.Equal(f.customerKey) || c.Topic != f.topic || len(c.Chain) != 1 || !c.Chain[0].Equal(f.ca.Cert) {
			t.Fatalf("credentials from openssl's PKCS#12 differ: topic %q, %d chain certificates", c.Topic, len(c.Chain))
		}
		if err := CheckPushCredentials(c, []*x509.Certificate{f.ca.Cert}, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err = ParsePushCredentials(read("push.p12"), nil, "wrong")
		wantRefusal(t, err, ErrPushBadPassword, "does not open the PKCS#12 file")
		_, err = ParsePushCredentials(read("push.p12"), nil, "")
		wantRefusal(t, err, ErrPushKeyEncrypted, "give its password")
	})

	t.Run("rsa -aes256", func(t *testing.T) {
		// OpenSSL 3 writes PKCS#8 unless told -traditional; 1.1 has no
		// such flag and writes the legacy form anyway.
		args := []string{"rsa", "-in", path("push.key"), "-aes256", "-passout", pass, "-out", path("legacy.key")}
		if out, err := runOpenSSL(t, bin, append(args, "-traditional")...); err != nil {
			t.Logf("openssl rsa -traditional: %v\n%s; trying without", err, out)
			if out, err := runOpenSSL(t, bin, args...); err != nil {
				t.Fatalf("openssl rsa -aes256: %v\n%s", err, out)
			}
		}
		legacy := read("legacy.key")
		if !bytes.Contains(legacy, []byte("Proc-Type: 4,ENCRYPTED")) || !bytes.Contains(legacy, []byte("AES-256-CBC")) {
			t.Fatalf("openssl did not write a legacy AES-256 PEM key:\n%s", legacy)
		}
		c, err := ParsePushCredentials(certPEM(f.pushCert), legacy, password)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Key.Equal(f.customerKey) {
			t.Fatal("decrypted key differs")
		}
		_, err = ParsePushCredentials(certPEM(f.pushCert), legacy, "")
		wantRefusal(t, err, ErrPushKeyEncrypted, "give its password")
		_, err = ParsePushCredentials(certPEM(f.pushCert), legacy, "wrong")
		wantRefusal(t, err, ErrPushBadPassword, "does not decrypt the key")
	})

	t.Run("pkey -aes256, then the advice", func(t *testing.T) {
		if out, err := runOpenSSL(t, bin, "pkey", "-in", path("push.key"), "-aes256", "-passout", pass, "-out", path("key.pem")); err != nil {
			t.Fatalf("openssl pkey -aes256: %v\n%s", err, out)
		}
		_, err := ParsePushCredentials(certPEM(f.pushCert), read("key.pem"), password)
		wantRefusal(t, err, ErrPushKeyEncrypted, "openssl pkey -in key.pem -out key-decrypted.pem")
		// The message's command, run in dir with the password it asks for.
		cmd := strings.Fields("pkey -in key.pem -out key-decrypted.pem")
		for i, a := range cmd {
			if strings.HasSuffix(a, ".pem") {
				cmd[i] = path(a)
			}
		}
		if out, err := runOpenSSL(t, bin, append(cmd, "-passin", pass)...); err != nil {
			t.Fatalf("the advised command failed: %v\n%s", err, out)
		}
		c, err := ParsePushCredentials(certPEM(f.pushCert), read("key-decrypted.pem"), "")
		if err != nil {
			t.Fatalf("after following the advice: %v", err)
		}
		if !c.Key.Equal(f.customerKey) {
			t.Fatal("decrypted key differs")
		}
	})
}

func FuzzParsePushCredentials(f *testing.F) {
	fx := pushFix(f)
	key, cert, ca := fx.customerKey, fx.pushCert, fx.ca.Cert
	f.Add(certPEM(cert), pkcs1PEM(key), "")
	f.Add(concat(pkcs8PEM(f, key), certPEM(ca, cert)), []byte(nil), "")
	f.Add(cert.Raw, pkcs8PEM(f, key), "")
	f.Add(mustP12(f, pkcs12.Modern, key, cert, []*x509.Certificate{ca}, "pw"), []byte(nil), "pw")
	f.Add(mustP12(f, pkcs12.LegacyDES, key, cert, nil, "pw"), []byte(nil), "wrong")
	f.Add(mustP12(f, pkcs12.Passwordless, key, cert, nil, ""), []byte(nil), "")
	f.Add(certPEM(cert), legacyEncryptedPEM(f, key, "pw"), "pw")
	f.Add(certPEM(cert), pemBlock("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), "pw")
	f.Add(certPEM(fx.tlsCert), pkcs1PEM(fx.tlsKey), "")
	f.Add(certPEM(cert), pkcs1PEM(fx.otherKey), "")
	f.Add([]byte("garbage"), []byte("garbage"), "x")
	f.Add([]byte{0x30, 0x80}, []byte(nil), "")
	f.Fuzz(func(t *testing.T, certData, keyData []byte, password string) {
		c, err := ParsePushCredentials(certData, keyData, password)
		if err != nil {
			if c != nil {
				t.Fatal("credentials returned with an error")
			}
			var e *Error
			if !errors.As(err, &e) || e.HTTPStatus() != 400 || e.Kind == nil {
				t.Fatalf("error %v is not a 400 *Error with a kind", err)
			}
			return
		}
		if c.Cert == nil || c.Key == nil || !c.Key.PublicKey.Equal(c.Cert.PublicKey) {
			t.Fatal("accepted a key that does not belong to the certificate")
		}
		if topic, err := TopicFromCert(c.Cert); err != nil || topic != c.Topic {
			t.Fatalf("topic %q, but the certificate says %q (%v)", c.Topic, topic, err)
		}
		for _, x := range c.Chain {
			if x == nil {
				t.Fatal("nil certificate in the chain")
			}
		}
	})
}
