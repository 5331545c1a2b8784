package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"regexp"
	"testing"
	"time"
)

var topicRE = regexp.MustCompile(`^com\.apple\.mgmt\.External\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewTopic(t *testing.T) {
	a, b := NewTopic(), NewTopic()
	for _, topic := range []string{a, b} {
		if !topicRE.MatchString(topic) {
			t.Fatalf("topic %q is not com.apple.mgmt.External.<lowercase uuid v4>", topic)
		}
	}
	if a == b {
		t.Fatal("two topics are equal")
	}
}

func TestMockPushCertTopicRoundTrip(t *testing.T) {
	pushCA := otherCA(t)
	topic := NewTopic()
	cert, key, err := NewMockPushCert(pushCA, topic, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("key does not belong to the push certificate")
	}
	got, err := TopicFromCert(cert)
	if err != nil {
		t.Fatal(err)
	}
	if got != topic {
		t.Fatalf("topic %q, want %q", got, topic)
	}
	if want := "APSP:" + topic[len("com.apple.mgmt.External."):]; cert.Subject.CommonName != want {
		t.Fatalf("CN %q, want %q", cert.Subject.CommonName, want)
	}
	if len(cert.Subject.Country) != 1 || cert.Subject.Country[0] != "US" {
		t.Fatalf("C %v, want US", cert.Subject.Country)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("EKU %v, want clientAuth", cert.ExtKeyUsage)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(pushCA.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("push certificate does not chain to its CA: %v", err)
	}

	// A topic of another shape still round-trips; CN takes its last label.
	cert, _, err = NewMockPushCert(pushCA, "com.apple.mgmt.test-topic", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := TopicFromCert(cert); got != "com.apple.mgmt.test-topic" {
		t.Fatalf("topic %q", got)
	}
	if cert.Subject.CommonName != "APSP:test-topic" {
		t.Fatalf("CN %q", cert.Subject.CommonName)
	}
}

func TestNewMockPushCertBadTopic(t *testing.T) {
	for _, topic := range []string{"", "com.apple.mgmt.", "com.example.push", "Com.Apple.Mgmt.External.x"} {
		_, _, err := NewMockPushCert(otherCA(t), topic, time.Hour)
		wantKind(t, err, ErrBadTopic)
	}
}

func TestTopicFromCertErrors(t *testing.T) {
	ca := otherCA(t)
	withSubject := func(name pkix.Name) *x509.Certificate {
		t.Helper()
		c, err := ca.issue(&x509.Certificate{Subject: name}, &deviceKey(t, 0).PublicKey, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		kind error
	}{
		{"nil", nil, ErrNoTopic},
		{"identity without UID", withSubject(pkix.Name{CommonName: "iPad"}), ErrNoTopic},
		{"UID not a topic", withSubject(pkix.Name{CommonName: "x", ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "jdoe"}}}), ErrBadTopic},
		{"UID with other push prefix", withSubject(pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "com.apple.push.x"}}}), ErrBadTopic},
		{"CA certificate", ca.Cert, ErrNoTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TopicFromCert(tc.cert)
			wantKind(t, err, tc.kind)
		})
	}
}
