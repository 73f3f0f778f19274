package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

const imrelpModule = "/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so"

// StartRsyslogRELP starts a private rsyslogd with two imrelp inputs, plain ("relp") and TLS
// ("relptls"), both bound to the same parsing and JSON-lines output as StartRsyslog. It is
// stopped when the test ends.
//
// The TLS input presents a certificate for localhost and 127.0.0.1 signed by CAFile and, like
// every imrelp TLS input that has a certificate (librelp then checks the peer, by fingerprint
// unless told otherwise), demands one from the client: tls.authMode="name" admits a
// certificate signed by the same CA that names ClientCertName (ClientCertFile, ClientKeyFile).
//
// Its main queue is direct: imrelp answers 200 once it has submitted a message, and with the
// default in-memory queue that is before the output has it, so a SIGKILL could lose messages
// rsyslog had already acknowledged. A direct queue runs the ruleset, and omfile's write at the
// end of the transaction, before the submit returns, so an acknowledged message is in the
// output file (in the page cache, which outlives the process) and a kill test proves what the
// sender controls.
func StartRsyslogRELP(t testing.TB) *Rsyslog {
	t.Helper()
	if _, err := os.Stat(rsyslogd); err != nil {
		missing(t, "rsyslogd (Debian rsyslog, rsyslog-gnutls)", rsyslogd)
	}
	if _, err := os.Stat(imrelpModule); err != nil {
		missing(t, "rsyslog's imrelp module (Debian rsyslog-relp)", imrelpModule)
	}
	r := newRsyslog(t)
	r.launch(t, func() { r.RELPPort, r.RELPTLSPort = FreePort(t), FreePort(t) }, r.relpConfig)
	return r
}

// RELPAddress is the plain imrelp input as a sink address.
func (r *Rsyslog) RELPAddress() string { return "relp://127.0.0.1:" + strconv.Itoa(r.RELPPort) }

// RELPTLSAddress is the TLS imrelp input; its certificate names localhost and 127.0.0.1 and is
// signed by CAFile.
func (r *Rsyslog) RELPTLSAddress() string {
	return "relp+tls://127.0.0.1:" + strconv.Itoa(r.RELPTLSPort)
}

func (r *Rsyslog) relpConfig() string {
	p := func(name string) string { return filepath.Join(r.dir, name) }
	return fmt.Sprintf(`global(
  workDirectory="%[1]s"
  maxMessageSize="4m"
  parser.escapeControlCharactersOnReceive="off"
  net.enableDNS="off"
)
main_queue(queue.type="direct")
module(load="imrelp")
%[7]s
input(type="imrelp" port="%[5]d" address="127.0.0.1" name="relp" ruleset="collect" maxDataSize="4m")
input(type="imrelp" port="%[6]d" address="127.0.0.1" name="relptls" ruleset="collect" maxDataSize="4m"
      tls="on" tls.cacert="%[2]s" tls.mycert="%[3]s" tls.myprivkey="%[4]s"
      tls.authMode="name" tls.permittedPeer=["%[8]s"])
`, p("work"), r.caPEM, p("server.pem"), p("server.key"), r.RELPPort, r.RELPTLSPort, r.collect(), ClientCertName)
}
