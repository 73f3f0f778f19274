package testenv

import (
	"net"
	"os"
	"testing"
)

// launch relies on listeningPorts to tell rsyslogd's listeners from another process's.
func TestListeningPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mine := l.Addr().(*net.TCPAddr).Port
	free := FreePort(t)
	ports, err := listeningPorts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ports[mine] {
		t.Errorf("port %d this process listens on is missing from %v", mine, ports)
	}
	if ports[free] {
		t.Errorf("port %d nobody listens on is in %v", free, ports)
	}
	// A process's listeners are its own: pid 1 does not hold this test's port.
	if other, err := listeningPorts(1); err == nil && other[mine] {
		t.Errorf("pid 1 listens on this process's port %d", mine)
	}
}
