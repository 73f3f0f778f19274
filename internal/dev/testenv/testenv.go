// Package testenv starts the real components the tests talk to (Azurite for Table storage,
// rsyslog for syslog and CEF) as private instances on loopback: their own ports, config, pid
// and work directory under the test's temporary directory, stopped when the test ends.
// `./build.sh test` installs what is missing (npm and Debian packages) before the tests run;
// a test that cannot find a component fails and says how to get it, it is never skipped.
package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the module root (the directory holding go.mod), found by walking up from
// the working directory of the test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ToolsDir is where ./build.sh installs test tools that are not Debian packages (Azurite).
func ToolsDir(t testing.TB) string {
	return filepath.Join(RepoRoot(t), ".tools")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// missing fails the test with how to install a component.
func missing(t testing.TB, what, path string) {
	t.Helper()
	t.Fatalf("testenv: %s not found at %s: run ./build.sh test, which installs it", what, path)
}
