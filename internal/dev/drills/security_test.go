package drills

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

// echoReceiver is a hostile intake: it refuses every request with the credentials it was sent
// quoted back in its answer, so a handler that logs or stores answers verbatim would leak them.
type echoReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // Authorization header and URL of every request
}

func startEcho(t *testing.T, status int) *echoReceiver {
	e := &echoReceiver{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		auth := req.Header.Get("Authorization")
		e.mu.Lock()
		e.seen = append(e.seen, auth+" "+req.URL.String())
		e.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "refused: Authorization=%q url=%q", auth, req.URL.String())
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echoReceiver) saw(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.seen {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// Known values in every secret setting, receivers that refuse (and quote what they were sent),
// a full invocation: no secret appears in stdout, stderr, the invocation's logs or any raw
// dead-letter entity.
func TestSecretsNeverLeak(t *testing.T) {
	r := newRig(t)
	const (
		hecSecret   = "hecSECRET-7d41b0e2-6c1f"
		lrSecret    = "lrSECRET-93ac55d0e8b14f"
		httpSecret  = "httpSECRET-0b6e2d91c4a7"
		pathSecret  = "pathSECRETa8f3c2e19d7b40c6e5f1a2b3"
		querySecret = "querySECRET51c0d9e2"
	)
	// The HEC receiver expects another token, so it answers 403 Invalid token.
	hec := r.hec("splunk", "Token="+hecSecret, "RetryMaxAttempts=2")
	lr := startEcho(t, http.StatusUnauthorized)
	r.dest("lr", "Type=logrhythm", "Url="+lr.URL+"/webhook", "Token="+lrSecret, "RetryMaxAttempts=2", "RetryInitialInterval=20ms")
	intake := startEcho(t, http.StatusBadGateway)
	r.dest("intake", "Type=http", "Url="+intake.URL+"/receiver/v1/http/"+pathSecret+"?token="+querySecret,
		"Headers__Authorization=Bearer "+httpSecret, "RetryMaxAttempts=2", "RetryInitialInterval=20ms")
	h := r.start()

	bodies, ids := alerts(t, "secret", 5)
	bodies = append(bodies, []byte("not json at all"))
	res := h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))

	// The drill proves something only if the secrets were used and refused.
	if !lr.saw("Bearer "+lrSecret) || !intake.saw("Bearer "+httpSecret) || !intake.saw(pathSecret) {
		t.Fatal("the receivers never got the secrets: the drill would prove nothing")
	}
	if hec.Requests() == 0 {
		t.Fatal("the HEC receiver got nothing")
	}
	all := r.account(
		ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)},
		ledger{Dest: "lr", Want: ids, Delivered: map[string]int{}},
		ledger{Dest: "intake", Want: ids, Delivered: map[string]int{}},
	)
	for _, d := range []string{"splunk", "lr"} {
		if rs := reasons(all[d]); rs["unauthorized"] != len(ids) {
			t.Errorf("%s letters by reason %v, want %d unauthorized", d, rs, len(ids))
		}
	}
	raw := r.rawEntities()
	for d, ls := range all {
		if len(ls) > 0 {
			t.Logf("%s: %s: %s", d, ls[0].Reason, ls[0].Error)
		}
	}
	haystacks := map[string]string{
		"stdout":          h.stdout.String(),
		"stderr":          h.stderr.String(),
		"invocation logs": strings.Join(res.Response.Logs, "\n"),
		"dead letters":    strings.Join(raw, "\n"),
	}
	if !strings.Contains(haystacks["dead letters"], "refused: Authorization=") {
		t.Error("the receivers' answers are not in the dead letters: the drill cannot tell redaction from omission")
	}
	secrets := map[string]string{
		"HEC token": hecSecret, "LogRhythm token": lrSecret, "http Authorization header": httpSecret,
		"http URL path code": pathSecret, "http URL query token": querySecret, "storage account key": testenv.AzuriteAccountKey,
	}
	for where, text := range haystacks {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("the %s appears in %s: …%s…", what, where, text[max(0, i-120):min(len(text), i+len(secret)+40)])
			}
		}
	}
}

// The handler listens on 127.0.0.1 only: /proc/net/tcp lists its socket on 0100007F and
// /proc/net/tcp6 has none on its port.
func TestHandlerListensOnLoopbackOnly(t *testing.T) {
	r := newRig(t)
	r.hec("splunk")
	h := r.start()
	var port int
	if _, err := fmt.Sscanf(h.host.URL(""), "http://127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			if file == "/proc/net/tcp6" && os.IsNotExist(err) {
				continue // no IPv6 on this machine: nothing can listen there
			}
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 4 || fs[3] != "0A" || !strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", port)) {
				continue
			}
			if fs[1] != fmt.Sprintf("0100007F:%04X", port) {
				t.Errorf("%s: listening on %s, want 0100007F:%04X only", file, fs[1], port)
			}
			found = true
		}
		f.Close()
	}
	if !found {
		t.Errorf("no listening socket on port %d", port)
	}
}

// An invocation larger than Forwarder__MaxRequestBytes is answered 413 and a log line names
// the setting to raise; the handler goes on serving.
func TestOversizedInvocationBody(t *testing.T) {
	r := newRig(t)
	r.set("Forwarder__MaxRequestBytes=65536")
	hec := r.hec("splunk")
	h := r.start()
	bodies, _ := alerts(t, "oversized", 20)
	res := h.invoke(t, batch(bodies, 1), 0, time.Minute)
	if res[0].Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP %d, want 413", res[0].Status)
	}
	h.waitLog(t, 5*time.Second, "Forwarder__MaxRequestBytes")
	small, ids := alerts(t, "fits", 2)
	h.mustSucceed(t, h.invoke(t, batch(small, 100), 0, time.Minute))
	r.account(ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, hec)})
}

// collector is a TLS intake with a self-signed certificate that keeps what it gets.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	lines map[string]int
}

// startTLSCollector starts the collector; wrap, when not nil, puts a handler in front of it.
func startTLSCollector(t *testing.T, wrap func(http.Handler) http.Handler) *collector {
	c := &collector{lines: map[string]int{}}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var rec struct{ SystemAlertId string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.SystemAlertId != "" {
				c.lines[rec.SystemAlertId]++
			}
		}
	})
	if wrap != nil {
		h = wrap(h)
	}
	c.Server = httptest.NewUnstartedServer(h)
	// The refused handshakes are the point of some drills, not news.
	c.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.StartTLS()
	t.Cleanup(c.Close)
	return c
}

func (c *collector) ids() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.lines {
		out[k] = v
	}
	return out
}

// Certificate verification is on unless InsecureSkipVerify=true says otherwise: a TLS
// destination without it refuses a receiver whose certificate no trusted CA signed (HTTPS and
// syslog over TLS), with the same receivers taking everything from destinations that turn it
// off, each of which is warned about at start.
func TestOnlyInsecureSkipVerifyTurnsVerificationOff(t *testing.T) {
	r := newRig(t)
	rs := testenv.StartRsyslog(t)
	verified := startTLSCollector(t, nil)
	skipped := startTLSCollector(t, nil)
	retry := []string{"RetryMaxAttempts=3", "RetryInitialInterval=20ms"}
	r.dest("httpsverified", append([]string{"Type=http", "Url=" + verified.URL, "Gzip=false"}, retry...)...)
	r.dest("httpsskip", append([]string{"Type=http", "Url=" + skipped.URL, "Gzip=false", "InsecureSkipVerify=true"}, retry...)...)
	r.dest("tlsverified", append([]string{"Type=syslog", "Address=" + rs.TLSAddress()}, retry...)...)
	r.dest("tlsskip", append([]string{"Type=cef", "Address=" + rs.TLSAddress(), "InsecureSkipVerify=true"}, retry...)...)
	h := r.start()
	for _, d := range []string{"httpsskip", "tlsskip"} {
		if !warned(h.stdout.String(), d) {
			t.Errorf("no start-up warning that verification is off for %s:\n%s", d, h.stdout.String())
		}
	}
	for _, d := range []string{"httpsverified", "tlsverified"} {
		if warned(h.stdout.String(), d) {
			t.Errorf("a warning that verification is off for %s, which did not turn it off", d)
		}
	}
	bodies, ids := alerts(t, "verify", 5)
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))
	// Both syslog destinations write to the same input; only the CEF one may get through.
	var cef, plain map[string]int
	poll(20*time.Second, func() bool {
		cef, plain = map[string]int{}, map[string]int{}
		for _, m := range rs.Messages(t, 0, 0) {
			if m.CEF != nil {
				cef[m.CEF.Extensions["cs1"]]++
			} else {
				plain[m.Fields["msg"]]++
			}
		}
		return len(cef) >= len(ids)
	})
	if len(plain) != 0 {
		t.Errorf("the verifying syslog destination delivered %d messages to an unverified collector", len(plain))
	}
	all := r.account(
		ledger{Dest: "httpsverified", Want: ids, Delivered: verified.ids()},
		ledger{Dest: "httpsskip", Want: ids, Delivered: skipped.ids()},
		ledger{Dest: "tlsverified", Want: ids, Delivered: map[string]int{}},
		ledger{Dest: "tlsskip", Want: ids, Delivered: cef},
	)
	for _, d := range []string{"httpsverified", "tlsverified"} {
		if rs := reasons(all[d]); rs["unauthorized"] != len(ids) {
			t.Errorf("%s letters by reason %v, want %d unauthorized", d, rs, len(ids))
		}
	}
	for _, d := range []string{"httpsskip", "tlsskip"} {
		if len(all[d]) != 0 {
			t.Errorf("%s: %d letters, want none", d, len(all[d]))
		}
	}
}

// warned reports whether a start-up warning about verification being off names destination d.
func warned(out, d string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "InsecureSkipVerify=true") && strings.Contains(line, `"`+d+`"`) && strings.Contains(line, `"WARN"`) {
			return true
		}
	}
	return false
}
