package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// BuildHandler builds the handler binary into a new temporary directory, for a TestMain that
// drives the real binary. It returns the binary's path and a cleanup that removes it.
func BuildHandler() (string, func(), error) {
	dir, err := os.MkdirTemp("", "handler-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "handler")
	build := exec.Command("go", "build", "-o", bin, "github.com/defender-siem/forwarder/handler")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building the handler: %w", err)
	}
	return bin, cleanup, nil
}

// MainWithHandler is a TestMain for tests that drive the real binary: it builds the handler
// once, sets *bin to its path, runs the tests and removes the build.
func MainWithHandler(m *testing.M, bin *string) {
	b, cleanup, err := BuildHandler()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// SyncBuffer collects a process's output; it is safe to read while the process writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
