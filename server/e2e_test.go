package server

import (
	"context"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/flowtest"
)

// TestEndToEndInProcess runs the whole enrollment and command flow through
// the server's handler with no socket: a virtual device fetches and verifies
// /enroll, enrolls over SCEP, and answers a DeviceInformation command queued
// through the REST API, whose result is then read back through the API.
func TestEndToEndInProcess(t *testing.T) {
	s := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doer := handlerDoer{s.Handler()}
	client := api.NewClient("https://mockmdm.test", s.PKI().APIKey, api.WithHTTPClient(&http.Client{Transport: doer}))
	trust := x509.NewCertPool()
	trust.AddCert(s.PKI().CA.Cert)

	e := flowtest.EnrollDevice(t, ctx, doer, client, s.URL(PathEnroll), trust)
	flowtest.DeviceInformationRoundTrip(t, ctx, client, e)
}
