package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// runBin runs a handler binary with args and no settings, returning stdout, stderr and the exit
// code.
func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args     []string
		want     string
		code     int
		toStderr bool
	}{
		{[]string{"help"}, "usage: handler [command]", 0, false},
		{[]string{"-h"}, "usage: handler [command]", 0, false},
		{[]string{"--help"}, "usage: handler [command]", 0, false},
		{[]string{"deadletters", "help"}, "usage: handler deadletters", 0, false},
		{[]string{"deadletters", "--help"}, "usage: handler deadletters", 0, false},
		{[]string{"deadletters"}, "usage: handler deadletters", 2, true},
		{[]string{"deadletters", "frobnicate"}, "usage: handler deadletters", 2, true},
		{[]string{"--frobnicate"}, `see "handler help"`, 2, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := runBin(t, handlerBin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			where, other := out, errs
			if tc.toStderr {
				where, other = errs, out
			}
			if !strings.Contains(where, tc.want) {
				t.Errorf("%q missing from the expected stream:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errs)
			}
			if other != "" {
				t.Errorf("unexpected output on the other stream: %q", other)
			}
		})
	}
	// The top-level help names every command.
	out, _, _ := runBin(t, handlerBin, "help")
	for _, cmd := range []string{"deadletters", "version", "help"} {
		if !strings.Contains(out, "\n  "+cmd) {
			t.Errorf("help does not list %s:\n%s", cmd, out)
		}
	}
}

// handler version reports what the toolchain stamped: built from a git checkout (as the
// release build is), the revision is a commit of this repository.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "handler")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, errs, code := runBin(t, bin, "version")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.TrimSpace(v)
	}
	if !strings.HasPrefix(out, "handler ") {
		t.Errorf("first line %q", strings.SplitN(out, "\n", 2)[0])
	}
	if fields["module"] != "github.com/defender-siem/forwarder" {
		t.Errorf("module %q", fields["module"])
	}
	if fields["go"] != runtime.Version() {
		t.Errorf("go %q, want %q", fields["go"], runtime.Version())
	}
	rev := regexp.MustCompile(`^([0-9a-f]{40})( \(modified\))?$`).FindStringSubmatch(fields["revision"])
	if rev == nil {
		t.Fatalf("revision %q, want a commit hash", fields["revision"])
	}
	if err := exec.Command("git", "cat-file", "-e", rev[1]+"^{commit}").Run(); err != nil {
		t.Errorf("revision %s is not a commit of this repository: %v", rev[1], err)
	}
	if _, err := time.Parse(time.RFC3339, fields["time"]); err != nil {
		t.Errorf("time %q: %v", fields["time"], err)
	}
}
