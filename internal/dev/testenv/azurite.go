package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AzuriteAccountKey is the emulator's public, well-known development key.
const AzuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// AzuriteAccount is the emulator's development account name.
const AzuriteAccount = "devstoreaccount1"

// Azurite is a private azurite-table instance on a loopback port, with its data in a directory
// of its own, so a Stop and Start keeps what was written. Tests get one from StartAzurite;
// programs without a testing.TB (the demo, the benchmark tool) from LaunchAzurite.
type Azurite struct {
	t    testing.TB // nil for LaunchAzurite
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// StartAzurite starts azurite-table from <repo>/.tools and waits until it accepts connections.
// It is stopped when the test ends.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := filepath.Join(ToolsDir(t), "node_modules", ".bin", "azurite-table")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "azurite-table", bin)
	}
	a := &Azurite{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(a.Stop)
	for attempt := 1; ; attempt++ {
		a.port = FreePort(t)
		a.mu.Lock()
		err := a.startLocked()
		a.mu.Unlock()
		if err == nil {
			return a
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("%v; starting again on another port", err)
	}
}

// LaunchAzurite starts the azurite-table binary bin on a free loopback port with its data in
// dir and waits until it accepts connections. The caller stops it with Stop.
func LaunchAzurite(bin, dir string) (*Azurite, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("testenv: azurite-table not found at %s: ./build.sh test installs it", bin)
	}
	a := &Azurite{bin: bin, dir: dir}
	a.mu.Lock()
	defer a.mu.Unlock()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		a.port = port
		err = a.startLocked()
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			return nil, err
		}
	}
}

// TableEndpoint is the table service URL, account included.
func (a *Azurite) TableEndpoint() string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", a.port, AzuriteAccount)
}

// ConnectionString is a storage connection string for this instance.
func (a *Azurite) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + AzuriteAccount + ";AccountKey=" + AzuriteAccountKey +
		";TableEndpoint=" + a.TableEndpoint() + ";"
}

// Port is the instance's TCP port; it stays the same across Stop and Start.
func (a *Azurite) Port() int { return a.port }

// Start runs the instance again after Stop, on the same port and data; it is a no-op when the
// instance is running. It fails the test when the instance does not come up.
func (a *Azurite) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.startLocked(); err != nil {
		if a.t == nil {
			panic(err)
		}
		a.t.Fatal(err)
	}
}

func (a *Azurite) startLocked() error {
	if a.cmd != nil {
		return nil
	}
	cmd := exec.Command(a.bin,
		"--tableHost", "127.0.0.1",
		"--tablePort", strconv.Itoa(a.port),
		"--location", a.dir,
		"--skipApiVersionCheck", "--disableTelemetry", "--silent",
	)
	cmd.Dir = a.dir
	out := &bytes.Buffer{}
	w := &lockedWriter{w: out}
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so Stop reaches node and anything it spawned, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: starting azurite-table: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	a.cmd, a.done, a.out = cmd, done, out

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			// Something answers; it is azurite only once azurite holds the listener (another
			// test process may have taken the port after freePort saw it free).
			if owned, _ := listeningPorts(cmd.Process.Pid); owned[a.port] {
				return nil
			}
		}
		select {
		case <-done:
			a.cmd = nil
			if strings.Contains(w.String(), "EADDRINUSE") {
				return fmt.Errorf("testenv: azurite-table: %w: %d", errPortTaken, a.port)
			}
			return fmt.Errorf("testenv: azurite-table exited at start-up: %s", w.String())
		default:
		}
		if time.Now().After(deadline) {
			a.stopLocked()
			return fmt.Errorf("testenv: azurite-table did not listen on %s within 30s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the instance (its process group only) and waits for it to exit.
func (a *Azurite) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked()
}

func (a *Azurite) stopLocked() {
	if a.cmd == nil {
		return
	}
	pgid := a.cmd.Process.Pid
	// Only SIGINT makes azurite-table close its database, which writes the data files a
	// restart reads (SIGTERM loses up to the last 5 s of writes); SIGKILL only if it hangs.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) && a.t != nil {
		a.t.Logf("testenv: stopping azurite-table: %v", err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-a.done
	}
	a.cmd = nil
}

// lockedWriter lets the child's stdout and stderr share one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
