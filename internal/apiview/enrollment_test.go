package apiview_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mockmdm/mockmdm/api"
	"github.com/mockmdm/mockmdm/internal/apiview"
	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/store"
)

func TestEnrollmentHidesSecrets(t *testing.T) {
	e := &store.Enrollment{
		ID: "E1", Type: string(mdm.Device), UDID: "U1", SerialNumber: "C02X",
		PushToken: []byte("secret-push-token"), PushMagic: "secret-magic",
		UnlockToken: []byte("secret-unlock"), BootstrapToken: []byte("secret-bootstrap"),
		Enrolled: true,
	}
	v := apiview.Enrollment(e)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret") {
		t.Errorf("the view shows a secret: %s", b)
	}
	if !v.PushTokenPresent || v.Channel != "device" || v.State != api.StateEnrolled || v.SerialNumber != "C02X" {
		t.Errorf("view %+v", v)
	}
}

func TestEnrollmentStateAndChannel(t *testing.T) {
	for _, tc := range []struct {
		name             string
		e                store.Enrollment
		state, channel   string
		pushTokenPresent bool
		wordsContain     string
	}{
		{"authenticated device", store.Enrollment{Type: string(mdm.Device)}, api.StateAuthenticated, "device", false, "device enrollment"},
		{"checked out wins over enrolled", store.Enrollment{Type: string(mdm.Device), Enrolled: true, CheckedOut: true}, api.StateCheckedOut, "device", false, "device enrollment"},
		{"macOS user channel", store.Enrollment{Type: string(mdm.User), Enrolled: true}, api.StateEnrolled, "user", false, "user channel"},
		{"BYOD device channel", store.Enrollment{Type: string(mdm.UserEnrollmentDevice)}, api.StateAuthenticated, "device", false, "BYOD"},
		{"token without magic is not a push token", store.Enrollment{Type: string(mdm.Device), PushToken: []byte{1}}, api.StateAuthenticated, "device", false, "device"},
		{"unknown type", store.Enrollment{Type: "Nonsense"}, api.StateAuthenticated, "user", false, "unknown (Nonsense)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := apiview.Enrollment(&tc.e)
			if string(v.State) != string(tc.state) || v.Channel != tc.channel || v.PushTokenPresent != tc.pushTokenPresent || !strings.Contains(v.EnrollmentType, tc.wordsContain) {
				t.Errorf("got state %q channel %q push %v words %q", v.State, v.Channel, v.PushTokenPresent, v.EnrollmentType)
			}
		})
	}
}
