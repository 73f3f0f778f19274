package alert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, raw []byte) Record {
	t.Helper()
	rec, err := Parse(raw, 0)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rec
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func jsonValid(b []byte) bool { return json.Valid(b) }
