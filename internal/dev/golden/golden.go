// Package golden compares test output with files under the calling package's testdata/, byte
// for byte, and rewrites them when the tests run with -update (then read the diff before
// committing: a golden file is only as good as the eye that checked it).
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Updating reports whether the run was asked to rewrite golden files.
func Updating() bool { return *update }

// Check compares got with testdata/<name>, or writes it there under -update. A difference
// is reported with both texts quoted, so invisible bytes (a tab, a NUL) show.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %q\nwant: %q", name, got, want)
	}
}
