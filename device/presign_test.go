package device_test

import (
	"context"
	"testing"
	"time"

	"github.com/mockmdm/mockmdm/device"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// sentSignatures are the Mdm-Signature headers of the device's connect
// requests, in order.
func sentSignatures(dev *device.Device) []string {
	var out []string
	for _, x := range dev.Transcript() {
		if x.Step == "connect" {
			out = append(out, x.RequestHeader.Get("Mdm-Signature"))
		}
	}
	return out
}

// TestPresignSendsWhatWasSignedAhead: after Presign, a connect that sends
// byte-identical bodies sends the signatures made ahead (a live signature
// a second later would carry another signing time), the server accepts
// them, and a body Presign did not foresee is signed live.
func TestPresignSendsWhatWasSignedAhead(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	id := srv.Enroll(dev)
	ctx := context.Background()

	sec := srv.Enqueue(map[string]any{"RequestType": "SecurityInfo"}, id)
	msgs, err := dev.Presign(ctx, device.Command{UUID: sec, RequestType: "SecurityInfo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("Presign signed %d messages, want the Idle and the SecurityInfo answer", len(msgs))
	}
	time.Sleep(1100 * time.Millisecond) // a live signature now has a later signingTime
	before := len(sentSignatures(dev))
	res, err := dev.Connect(ctx)
	if err != nil || len(res.Commands) != 1 || res.Commands[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("connect after Presign: %+v, %v", res, err)
	}
	sent := sentSignatures(dev)[before:]
	if len(sent) != 2 || sent[0] != msgs[0].Signature || sent[1] != msgs[1].Signature {
		t.Fatalf("the connect did not send the presigned signatures (%d sent)", len(sent))
	}
	if st := srv.WaitResult(sec, 10*time.Second); st.Results[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("the server did not record the presigned answer: %+v", st)
	}

	// The Idle's signature serves every connect until the next Presign.
	before = len(sentSignatures(dev))
	if _, err := dev.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if s := sentSignatures(dev)[before:]; len(s) != 1 || s[0] != msgs[0].Signature {
		t.Fatal("a second connect did not reuse the presigned Idle")
	}

	// A command Presign was not told about is answered and signed live.
	info := srv.Enqueue(map[string]any{"RequestType": "ProfileList"}, id)
	before = len(sentSignatures(dev))
	if res, err := dev.Connect(ctx); err != nil || len(res.Commands) != 1 || res.Commands[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("connect with an unforeseen command: %+v, %v", res, err)
	}
	if s := sentSignatures(dev)[before:]; len(s) != 2 || s[1] == msgs[0].Signature || s[1] == msgs[1].Signature || s[1] == "" {
		t.Fatal("the unforeseen answer was not signed live")
	}
	if st := srv.WaitResult(info, 10*time.Second); st.Results[0].Status != mdm.StatusAcknowledged {
		t.Fatalf("the server did not record the live-signed answer: %+v", st)
	}
}

// TestPresignSkipsWhatItCannotForesee: commands that change the device,
// handlers a test replaced, and queries a NotNow or failure is set for are
// not answered ahead; only the Idle is signed.
func TestPresignSkipsWhatItCannotForesee(t *testing.T) {
	srv := mdmtest.NewServer(t)
	dev := srv.NewDevice()
	srv.Enroll(dev)
	ctx := context.Background()
	dev.Handle("ProfileList", func(context.Context, *device.Device, *device.Command) device.Response {
		return device.Acknowledged(nil)
	})
	dev.SetNotNow("SecurityInfo", 1)
	dev.FailWith("CertificateList", device.ChainItem(device.DomainMDM, 12021, "no"))
	msgs, err := dev.Presign(ctx,
		device.Command{UUID: "a", RequestType: "DeviceLock"},
		device.Command{UUID: "b", RequestType: "ProfileList"},
		device.Command{UUID: "c", RequestType: "SecurityInfo"},
		device.Command{UUID: "d", RequestType: "CertificateList"},
		device.Command{UUID: "e", RequestType: "NoSuchCommand"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Presign signed %d messages, want only the Idle", len(msgs))
	}

	// Hostile and impossible calls are refused with a reason.
	if _, err := srv.NewDevice().Presign(ctx); err == nil {
		t.Error("Presign on a device that is not enrolled succeeded")
	}
	many := make([]device.Command, 64)
	if _, err := dev.Presign(ctx, many...); err == nil {
		t.Error("Presign took 64 commands")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := dev.Presign(cancelled); err == nil {
		t.Error("Presign with a cancelled context succeeded")
	}
}
