// Package flowtest holds end-to-end flows that tests run against a mockmdm
// reached in different ways (in-process handler, real sockets to the built
// binary), so each flow is written once.
package flowtest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/push/mockapns"
)

// EnrollResult is what EnrollDevice leaves behind for further steps.
type EnrollResult struct {
	Device       *device.Device
	EnrollmentID string
}

// EnrollDevice makes a virtual device fetch the enrollment profile at
// enrollURL, check its signature against trust, enroll over SCEP, and checks
// the server lists the enrollment as enrolled.
func EnrollDevice(t testing.TB, ctx context.Context, d device.Doer, client *api.Client, enrollURL string, trust *x509.CertPool, opts ...device.Option) EnrollResult {
	t.Helper()
	dev := device.New(d, append([]device.Option{device.WithSeed(42), device.WithModel(device.IPad), device.WithTrust(trust)}, opts...)...)
	res, err := dev.EnrollFromURL(ctx, enrollURL)
	if err != nil {
		t.Fatalf("enroll from %s: %v", enrollURL, err)
	}
	if !res.Signed || !res.Verified {
		t.Fatalf("the served profile did not verify: signed=%v verified=%v (%v)", res.Signed, res.Verified, res.VerifyError)
	}
	if len(res.Identities) != 1 || !res.Enrolled {
		t.Fatalf("install result: %d identities, enrolled=%v", len(res.Identities), res.Enrolled)
	}
	e, err := client.GetEnrollment(ctx, dev.UDID())
	if err != nil {
		t.Fatalf("the server does not list the new enrollment: %v", err)
	}
	if e.State != api.StateEnrolled || !e.PushTokenPresent || e.SerialNumber != dev.SerialNumber() {
		t.Fatalf("enrollment as the API shows it: %+v", e)
	}
	return EnrollResult{Device: dev, EnrollmentID: e.ID}
}

// DeviceInformationRoundTrip queues DeviceInformation through the API, lets
// the device connect and answer, and checks the result through the API's
// long-poll.
func DeviceInformationRoundTrip(t testing.TB, ctx context.Context, client *api.Client, e EnrollResult) {
	t.Helper()
	cmd, _ := json.Marshal(map[string]any{"RequestType": "DeviceInformation", "Queries": []string{"DeviceName", "SerialNumber", "OSVersion", "UDID"}})
	queued, err := client.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{e.EnrollmentID}, Command: cmd})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	status, err := client.GetCommand(ctx, queued.CommandUUID, 0)
	if err != nil || status.Done || status.Results[0].Status != "Pending" {
		t.Fatalf("before the device connects: %+v %v", status, err)
	}
	cr, err := e.Device.Connect(ctx)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if len(cr.Commands) != 1 {
		t.Fatalf("device handled %d commands, want 1", len(cr.Commands))
	}
	status, err = client.GetCommand(ctx, queued.CommandUUID, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !status.Done || len(status.Results) != 1 || status.Results[0].Status != "Acknowledged" {
		t.Fatalf("after connect: %+v", status)
	}
	var result struct {
		QueryResponses map[string]any
		CommandUUID    string
	}
	if err := json.Unmarshal(status.Results[0].Result, &result); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	q := result.QueryResponses
	if q["SerialNumber"] != e.Device.SerialNumber() || q["UDID"] != e.Device.UDID() || q["DeviceName"] == nil || q["OSVersion"] == nil {
		t.Fatalf("QueryResponses: %v", q)
	}
	if result.CommandUUID != queued.CommandUUID {
		t.Fatalf("result answers %s, want %s", result.CommandUUID, queued.CommandUUID)
	}
	tr, err := client.Transcript(ctx, e.EnrollmentID, 0, 0)
	if err != nil || len(tr) < 4 {
		t.Fatalf("transcript: %d entries, %v", len(tr), err)
	}
}

// PushWakesDevice keeps the device subscribed at the mock APNs (apnsURL,
// reached as o says), queues a command through the API — which pushes —
// and checks that the device woke, connected and answered on its own: the
// test never calls Connect.
func PushWakesDevice(t testing.TB, ctx context.Context, client *api.Client, e EnrollResult, apnsURL string, o mockapns.DialOptions) {
	t.Helper()
	lctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- e.Device.ListenForPushes(lctx, apnsURL, o, device.WithRetry(100*time.Millisecond), device.OnSubscribed(func() {
			select {
			case ready <- struct{}{}:
			default:
			}
		}))
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatalf("the device did not subscribe at the mock APNs %s; its transcript: %+v", apnsURL, lastExchange(e.Device))
	}
	cmd, _ := json.Marshal(map[string]any{"RequestType": "SecurityInfo"})
	queued, err := client.Enqueue(ctx, api.EnqueueRequest{EnrollmentIDs: []string{e.EnrollmentID}, Command: cmd})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if len(queued.Push) != 1 || !queued.Push[0].Pushed {
		t.Fatalf("the enqueue did not push: %+v", queued.Push)
	}
	status, err := client.GetCommand(ctx, queued.CommandUUID, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !status.Done || status.Results[0].Status != "Acknowledged" {
		t.Fatalf("after the push: %+v (device transcript ends %+v)", status, lastExchange(e.Device))
	}
}

func lastExchange(d *device.Device) device.Exchange {
	tr := d.Transcript()
	if len(tr) == 0 {
		return device.Exchange{}
	}
	return tr[len(tr)-1]
}
