package testenv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
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

// RsyslogMessage is one message as the private rsyslog parsed it. Fields hold rsyslog's
// properties by name (inputname, pri, syslogfacility, syslogseverity, protocol-version,
// timereported, hostname, app-name, procid, msgid, structured-data, msg, rawmsg); SD is
// mmpstrucdata's parse of the structured data ({"SD-ID": {"name": "value"}}), CEF is
// mmnormalize's parse of a CEF payload (nil when the message carried none).
type RsyslogMessage struct {
	Fields map[string]string
	SD     map[string]map[string]string
	CEF    *RsyslogCEF
	Line   []byte
}

// RsyslogCEF is liblognorm's CEF parse: the header fields and the decoded extension.
type RsyslogCEF struct {
	DeviceVendor, DeviceProduct, DeviceVersion, SignatureID, Name, Severity string
	Extensions                                                              map[string]string
}

// Rsyslog is a private rsyslogd listening on loopback: one TCP port (octet counting and LF
// framing), one TLS port (octet counting, anonymous client auth) and one UDP port.
type Rsyslog struct {
	TCPPort, TLSPort, UDPPort int
	// RELPPort and RELPTLSPort are the imrelp inputs of StartRsyslogRELP, zero otherwise.
	RELPPort, RELPTLSPort int

	dir, conf, pidFile, out, caPEM string

	mu  sync.Mutex
	cmd *exec.Cmd
}

const rsyslogd = "/usr/sbin/rsyslogd"

// StartRsyslog starts a private rsyslogd for the test and stops it when the test ends.
func StartRsyslog(t testing.TB) *Rsyslog {
	t.Helper()
	if _, err := os.Stat(rsyslogd); err != nil {
		missing(t, "rsyslogd (Debian rsyslog, rsyslog-gnutls)", rsyslogd)
	}
	r := newRsyslog(t)
	r.launch(t, func() {
		r.TCPPort, r.TLSPort, r.UDPPort = FreePort(t), FreePort(t), freeUDPPort(t)
	}, r.config)
	return r
}

func newRsyslog(t testing.TB) *Rsyslog {
	dir := t.TempDir()
	return &Rsyslog{
		dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), pidFile: filepath.Join(dir, "rsyslogd.pid"),
		out: filepath.Join(dir, "messages.jsonl"), caPEM: filepath.Join(dir, "ca.pem"),
	}
}

// launch writes the certificates, the CEF rulebase and the config, checks the config and
// starts rsyslogd. pick chooses the ports the config names: a port is free when FreePort
// returns it, but another test process may take it before rsyslogd binds it, and then the
// tests would talk to that process. So launch picks new ports and starts again when rsyslogd
// does not own all of its listeners.
func (r *Rsyslog) launch(t testing.TB, pick func(), conf func() string) {
	t.Helper()
	dir := r.dir
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeCerts(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "cef.rb"), []byte("version=2\nrule=:%cef:cef%\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		pick()
		if err := os.WriteFile(r.conf, []byte(conf()), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(rsyslogd, "-N1", "-f", r.conf).CombinedOutput(); err != nil {
			t.Fatalf("testenv: rsyslogd -N1 rejected the generated config: %v\n%s", err, out)
		}
		err := r.start()
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("testenv: %v; starting again on other ports", err)
	}
	t.Cleanup(r.Stop)
}

// errPortTaken reports a listener of rsyslogd's config that another process holds.
var errPortTaken = errors.New("a port rsyslogd should listen on is another process's")

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free UDP port: %v", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TCPAddress, TLSAddress and UDPAddress are the inputs as sink addresses.
func (r *Rsyslog) TCPAddress() string { return "tcp://127.0.0.1:" + strconv.Itoa(r.TCPPort) }

// TLSAddress is the TLS input; its certificate names localhost and 127.0.0.1.
func (r *Rsyslog) TLSAddress() string { return "tls://127.0.0.1:" + strconv.Itoa(r.TLSPort) }

// UDPAddress is the UDP input.
func (r *Rsyslog) UDPAddress() string { return "udp://127.0.0.1:" + strconv.Itoa(r.UDPPort) }

// CAFile is the PEM file of the CA that signed the TLS input's certificate.
func (r *Rsyslog) CAFile() string { return r.caPEM }

// config is the private rsyslog's configuration. Its main queue is direct, so that what rsyslog
// has read it has written before a Stop lets it exit: with the default in-memory queue, a
// stopped rsyslog discards what it could not write within its shutdown timeout (1.5 s), which
// on a loaded machine is part of a large batch that the forwarder had handed over. That loss is
// the collector's setting (the README says so); the tests measure what the forwarder controls.
func (r *Rsyslog) config() string {
	p := func(name string) string { return filepath.Join(r.dir, name) }
	return fmt.Sprintf(`global(
  workDirectory="%[1]s"
  maxMessageSize="4m"
  parser.escapeControlCharactersOnReceive="off"
  net.enableDNS="off"
  defaultNetstreamDriverCAFile="%[2]s"
  defaultNetstreamDriverCertFile="%[3]s"
  defaultNetstreamDriverKeyFile="%[4]s"
)
module(load="imtcp" maxSessions="100")
module(load="imudp")
main_queue(queue.type="direct")
%[8]s
input(type="imtcp" port="%[5]d" address="127.0.0.1" name="tcp" ruleset="collect"
      supportOctetCountedFraming="on")
input(type="imtcp" port="%[6]d" address="127.0.0.1" name="tls" ruleset="collect"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      gnutlsPriorityString="NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")
input(type="imudp" port="%[7]d" address="127.0.0.1" name="udp" ruleset="collect")
`, p("work"), r.caPEM, p("server.pem"), p("server.key"), r.TCPPort, r.TLSPort, r.UDPPort, r.collect())
}

// collect is the part of every private rsyslog's config that parses and writes: the JSON-lines
// template and the ruleset "collect" the inputs are bound to.
func (r *Rsyslog) collect() string {
	return fmt.Sprintf(`module(load="mmpstrucdata")
module(load="mmnormalize")

template(name="jsonl" type="list" option.jsonf="on") {
  property(outname="inputname" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="syslogfacility" name="syslogfacility" format="jsonf")
  property(outname="syslogseverity" name="syslogseverity" format="jsonf")
  property(outname="protocol-version" name="protocol-version" format="jsonf")
  property(outname="timereported" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app-name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured-data" name="structured-data" format="jsonf")
  property(outname="rfc5424-sd" name="$!rfc5424-sd" format="jsonf")
  property(outname="cef" name="$!cef" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="rawmsg" name="rawmsg" format="jsonf")
}

ruleset(name="collect") {
  action(type="mmpstrucdata" sd_name.lowercase="off")
  set $.cefline = re_extract($rawmsg, "CEF:[0-9]+[|].*", 0, 0, "");
  if $.cefline != "" then {
    action(type="mmnormalize" rulebase="%[1]s" variable="$.cefline")
  }
  action(type="omfile" file="%[2]s" template="jsonl")
}
`, filepath.Join(r.dir, "cef.rb"), r.out)
}

// Start runs rsyslogd (again, after Stop or Kill) and waits until its stream ports accept.
func (r *Rsyslog) Start(t testing.TB) {
	t.Helper()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
}

func (r *Rsyslog) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return errors.New("testenv: rsyslogd already running")
	}
	_ = os.Remove(r.pidFile)
	cmd := exec.Command(rsyslogd, "-n", "-f", r.conf, "-i", r.pidFile)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start rsyslogd: %w", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	ports := []int{r.TCPPort, r.TLSPort, r.RELPPort, r.RELPTLSPort}
	for _, port := range ports {
		for port != 0 {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				r.stopLocked()
				return fmt.Errorf("testenv: rsyslogd did not listen on %d: %w\n%s", port, err, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	owned, err := listeningPorts(cmd.Process.Pid)
	if err != nil {
		r.stopLocked()
		return err
	}
	for _, port := range ports {
		if port != 0 && !owned[port] {
			r.stopLocked()
			return fmt.Errorf("testenv: %w: %d\n%s", errPortTaken, port, stderr.String())
		}
	}
	return nil
}

// listeningPorts returns the TCP ports the process pid listens on, from /proc: the socket
// inodes among its open files, matched against the kernel's table of listening sockets.
func listeningPorts(pid int) (map[int]bool, error) {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, fmt.Errorf("testenv: rsyslogd's open files: %w", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue // no IPv6 on this machine
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if port, err := strconv.ParseInt(hexPort, 16, 32); err == nil {
				ports[int(port)] = true
			}
		}
	}
	return ports, nil
}

// Kill ends the rsyslogd this Rsyslog started with SIGKILL, as a crash or an OOM kill would:
// no queue is drained and no session is closed. It waits for the process to be gone.
func (r *Rsyslog) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Stop terminates the rsyslogd this Rsyslog started and waits for it to exit.
func (r *Rsyslog) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Rsyslog) stopLocked() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

// Messages waits until the output holds at least n messages, or timeout passes, and
// returns all of them decoded. It fails the test on timeout.
func (r *Rsyslog) Messages(t testing.TB, n int, timeout time.Duration) []RsyslogMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := r.read()
		if err != nil {
			t.Fatalf("testenv: rsyslog output: %v", err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: rsyslog wrote %d messages, want %d", len(msgs), n)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Lines counts the lines rsyslog has written so far without parsing them, for polls that
// must be cheap while a large batch is arriving.
func (r *Rsyslog) Lines() int {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte{'\n'})
}

// Written reports how many bytes rsyslog has written to its output: the cheapest sign that
// messages are arriving, for a poll that must react within milliseconds.
func (r *Rsyslog) Written() int64 {
	fi, err := os.Stat(r.out)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LinesFrom counts, as cheaply as Lines, the lines of messages that came in on input.
func (r *Rsyslog) LinesFrom(input string) int {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte(`{"inputname":"`+input+`"`))
}

func (r *Rsyslog) read() ([]RsyslogMessage, error) {
	data, err := os.ReadFile(r.out)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var msgs []RsyslogMessage
	lines := bytes.Split(data, []byte{'\n'})
	// What follows the last LF may still be being written.
	for _, line := range lines[:len(lines)-1] {
		var raw map[string]any
		if err := json.Unmarshal(line, &raw); err != nil {
			// A line cut short by a kill (omfile writes a long line in several writes), with
			// the next run's first line appended to it: keep the whole line at its end, drop the
			// torn one, which rsyslog never finished and so never acknowledged over RELP.
			i := bytes.LastIndex(line, []byte(`{"inputname":`))
			if i <= 0 || json.Unmarshal(line[i:], &raw) != nil {
				continue
			}
			line = line[i:]
		}
		m := RsyslogMessage{Fields: map[string]string{}, Line: line}
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				m.Fields[k] = v
			case nil:
			default:
				b, _ := json.Marshal(v)
				m.Fields[k] = string(b)
			}
		}
		if sd := m.Fields["rfc5424-sd"]; sd != "" {
			if err := json.Unmarshal([]byte(sd), &m.SD); err != nil {
				return nil, fmt.Errorf("rfc5424-sd %q: %w", sd, err)
			}
		}
		if c := m.Fields["cef"]; c != "" {
			m.CEF = new(RsyslogCEF)
			if err := json.Unmarshal([]byte(c), m.CEF); err != nil {
				return nil, fmt.Errorf("cef %q: %w", c, err)
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ClientCertName is the name in the client certificate ClientCertFile holds.
const ClientCertName = "forwarder.test"

// ClientCertFile and ClientKeyFile are a client certificate signed by CAFile's CA, named
// ClientCertName.
func (r *Rsyslog) ClientCertFile() string { return filepath.Join(r.dir, "client.pem") }

// ClientKeyFile is the key of ClientCertFile.
func (r *Rsyslog) ClientKeyFile() string { return filepath.Join(r.dir, "client.key") }

// writeCerts writes a test CA (ca.pem), a server certificate for localhost and 127.0.0.1
// signed by it (server.pem, server.key) and a client certificate (client.pem, client.key).
func writeCerts(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testenv syslog CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	// A client certificate for receivers that demand one (imrelp with certificates does).
	cltKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cltTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: ClientCertName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{ClientCertName},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cltDER, err := x509.CreateCertificate(rand.Reader, cltTmpl, caCert, &cltKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cltKeyDER, err := x509.MarshalECPrivateKey(cltKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
		"client.pem": {Type: "CERTIFICATE", Bytes: cltDER},
		"client.key": {Type: "EC PRIVATE KEY", Bytes: cltKeyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// WrongCAFile writes a CA that did not sign the receiver's certificate, for tests of a
// failing verification.
func WrongCAFile(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	writeCerts(t, dir)
	return filepath.Join(dir, "ca.pem")
}
