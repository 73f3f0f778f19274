package alert

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// ScannedValues is EntityValues over entities read by ScanEntities, the whole list the tests
// hold ScanEntities to: the distinct non-empty values, in order, of the fields (indexes into
// the names given to ScanEntities) of the entities of type entityType (in any letter case).
func ScannedValues(ents []ScannedEntity, entityType string, fields ...int) []string {
	var out []string
	for _, e := range ents {
		if !strings.EqualFold(e.Type, entityType) {
			continue
		}
		for _, f := range fields {
			if v := scalarText(e.Values[f]); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}
