package mdmtest_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mockmdm/mockmdm/mdm"
	"github.com/mockmdm/mockmdm/server/mdmtest"
)

// exampleT stands in for the *testing.T an integration test has.
type exampleT struct{ cleanups []func() }

func (t *exampleT) Helper()                           {}
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// A complete integration test: start a server, enroll a virtual iPad over
// SCEP, and ask it for device information through the REST API. In a real
// test, t is the test's *testing.T.
func Example() {
	t := &exampleT{}
	defer t.done()

	srv := mdmtest.NewServer(t) // in-process: no port, memory store, test PKI
	dev := srv.NewDevice()      // a virtual iPad, seed 1
	id := srv.Enroll(dev)       // profile, SCEP, Authenticate, TokenUpdate
	enrollment, err := srv.Client().GetEnrollment(context.Background(), id)
	if err != nil {
		panic(err)
	}
	fmt.Println("enrolled:", enrollment.State, enrollment.ProductName)

	res := srv.Run(dev, &mdm.DeviceInformation{Queries: []string{"SerialNumber", "OSVersion"}})
	var answer struct{ QueryResponses map[string]string }
	if err := json.Unmarshal(res.Result, &answer); err != nil {
		panic(err)
	}
	fmt.Println("status:", res.Status, "OS", answer.QueryResponses["OSVersion"])
	fmt.Println("serial matches:", answer.QueryResponses["SerialNumber"] == dev.SerialNumber())
	// Output:
	// enrolled: enrolled iPad13,18
	// status: Acknowledged OS 18.1
	// serial matches: true
}
