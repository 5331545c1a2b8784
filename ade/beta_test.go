package ade

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestBetaTokensWithNanoDEP: the organisation's OS beta programs, set by
// the tester, reach NanoDEP's godep client (written from Apple's schema)
// under both of the response's keys; none at first.
func TestBetaTokensWithNanoDEP(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	dep := nanoDEPClient(t, h)
	const name = "mockmdm"
	got, err := dep.OSBetaEnrollmentTokens(ctx, name)
	if err != nil || len(got.BetaEnrollmentTokens) != 0 {
		t.Fatalf("before any are set: %+v %v", got, err)
	}
	put := func(body string) (int, string) {
		req, _ := http.NewRequest("PUT", h.srv.URL+"/v1/ade/beta-tokens", strings.NewReader(body))
		code, b := roundTrip(t, req)
		return code, string(b)
	}
	if code, b := put(`{"tokens":[{"title":"iOS 27 Developer Beta","os":"iOS","token":"tok-ios-27"},{"title":"macOS 27 Public Beta","os":"OSX","token":"tok-mac-27"}]}`); code != 200 {
		t.Fatalf("set: %d %s", code, b)
	}
	got, err = dep.OSBetaEnrollmentTokens(ctx, name)
	if err != nil || len(got.BetaEnrollmentTokens) != 2 || len(got.SeedBuildTokens) != 2 {
		t.Fatalf("after set: %+v %v", got, err)
	}
	b := got.BetaEnrollmentTokens[0]
	if b.Title == nil || *b.Title != "iOS 27 Developer Beta" || b.Os == nil || string(*b.Os) != "iOS" || b.Token == nil || *b.Token != "tok-ios-27" {
		t.Errorf("first program %+v", b)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/v1/ade/beta-tokens", nil)
	if code, body := roundTrip(t, req); code != 200 || !strings.Contains(string(body), "tok-mac-27") {
		t.Errorf("admin read: %d %s", code, body)
	}
	for _, bad := range []string{
		`{"tokens":[{"title":"x","os":"Android","token":"t"}]}`,
		`{"tokens":[{"title":"","os":"iOS","token":"t"}]}`,
		`{"tokens":[{"title":"x","os":"iOS","token":""}]}`,
		`{"tokens":[{"title":"x","os":"iOS","token":"t","extra":1}]}`,
		`{"tokens":"all"}`,
		`[`,
		`{"tokens":[` + strings.Repeat(`{"title":"x","os":"iOS","token":"t"},`, 100) + `{"title":"x","os":"iOS","token":"t"}]}`,
	} {
		if code, body := put(bad); code != 400 || !strings.Contains(body, `"reason"`) {
			t.Errorf("%.60s: %d %s", bad, code, body)
		}
	}
	// A refused list leaves the programs as they were.
	if got, _ := dep.OSBetaEnrollmentTokens(ctx, name); len(got.BetaEnrollmentTokens) != 2 {
		t.Errorf("a refused list changed the programs: %+v", got)
	}
}

// FuzzParseBetaTokens: beta program lists never panic; refusals are 400s
// with a reason, and an accepted list holds only Apple's os values.
func FuzzParseBetaTokens(f *testing.F) {
	for _, s := range []string{`{"tokens":[{"title":"t","os":"iOS","token":"x"}]}`, `{"tokens":[]}`, `{"tokens":[{"os":"Android"}]}`, `{"tokens":"x"}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := ParseBetaTokens(b)
		if err != nil {
			requireRefusal(t, err)
			return
		}
		for _, tok := range list {
			if !slices.Contains(betaOSValues, tok.OS) || tok.Title == "" || tok.Token == "" {
				t.Fatalf("accepted %+v", tok)
			}
		}
	})
}
