package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeclarationLint: a good declaration prints its kind and ServerToken;
// a bad one fails with the rule and the schema file; usage mistakes are
// usage errors.
func TestDeclarationLint(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"Type":"com.apple.configuration.management.test","Identifier":"com.example.test","Payload":{"Echo":"hello"}}`), 0o600)
	os.WriteFile(bad, []byte(`{"Type":"com.apple.configuration.management.test","Identifier":"x","Payload":{"Echo":7}}`), 0o600)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"declaration", "lint", good}, envOf(), &out, io.Discard); err != nil || !strings.Contains(out.String(), "ok: configuration com.example.test") || !strings.Contains(out.String(), "ServerToken acb07948a6a438815576eaa416c42bae") {
		t.Errorf("good: %v\n%s", err, out.String())
	}
	err := run(context.Background(), []string{"declaration", "lint", bad}, envOf(), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Payload.Echo") || !strings.Contains(err.Error(), "management.test.yaml") || exitCode(err) != 1 {
		t.Errorf("bad: %v", err)
	}
	for _, args := range [][]string{{"declaration", "nope"}, {"declaration", "lint"}, {"declaration", "lint", "a", "b"}} {
		if err := run(context.Background(), args, envOf(), io.Discard, io.Discard); exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if err := run(context.Background(), []string{"declaration", "lint", filepath.Join(dir, "missing.json")}, envOf(), io.Discard, io.Discard); err == nil {
		t.Error("a missing file")
	}
}
