package syslog_test

// Tests against a real receiver: a private rsyslogd on loopback (testenv.StartRsyslog) parses
// what the client sends, with mmpstrucdata for STRUCTURED-DATA and liblognorm (mmnormalize)
// for CEF, and every field it reports is compared with what was sent.

import (
	"context"
	"fmt"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/format/cef"
	fsyslog "github.com/defender-siem/forwarder/internal/format/syslog"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/syslog"
)

const wait = 20 * time.Second

type transport struct {
	name    string
	addr    func(*testenv.Rsyslog) string
	framing string
}

var transports = []transport{
	{"tcp octet-counting", (*testenv.Rsyslog).TCPAddress, syslog.FramingOctetCounting},
	{"tcp lf", (*testenv.Rsyslog).TCPAddress, syslog.FramingLF},
	{"tls", (*testenv.Rsyslog).TLSAddress, syslog.FramingOctetCounting},
	{"udp", (*testenv.Rsyslog).UDPAddress, syslog.FramingOctetCounting},
}

func rsyslogClient(t testing.TB, r *testenv.Rsyslog, tr transport, mod func(*syslog.Config)) *syslog.Client {
	return newClient(t, tr.addr(r), func(c *syslog.Config) {
		c.Framing = tr.framing
		c.TLS.CAFile = r.CAFile()
		c.MaxDatagram = 65507
		if mod != nil {
			mod(c)
		}
	})
}

func records(t testing.TB) map[string]*alert.Record {
	return map[string]*alert.Record{
		"elastic alert": alerttest.ElasticAlert(t), "mdc alert (not JSON)": alerttest.MDCAlert(t), "hostile alert": alerttest.HostileFieldsAlert(),
		"assessment": alerttest.Assessment(t), "score control": alerttest.ScoreControl(t),
	}
}

// sendThrough sends batch to r over tr and returns what rsyslog wrote of it, message for
// message, after the seen messages of earlier rounds.
func sendThrough(t *testing.T, r *testenv.Rsyslog, tr transport, batch [][]byte, seen *int) []testenv.RsyslogMessage {
	t.Helper()
	c := rsyslogClient(t, r, tr, nil)
	allNil(t, c.Send(context.Background(), batch))
	got := r.Messages(t, *seen+len(batch), wait)[*seen:]
	*seen += len(got)
	if len(got) != len(batch) {
		t.Fatalf("rsyslog got %d messages, want %d", len(got), len(batch))
	}
	return got
}

// cleaned is what an SD value or a CEF header field reads back as: invalid bytes as U+FFFD,
// control characters as spaces.
func cleaned(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			sb.WriteRune(utf8.RuneError)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			sb.WriteByte(' ')
		default:
			sb.WriteString(s[i : i+n])
		}
		i += n
	}
	return sb.String()
}

// split5424 cuts a message the formatter wrote into its header fields, SD and MSG.
func split5424(t testing.TB, msg string) (hdr []string, sd, body string) {
	t.Helper()
	hdr = strings.SplitN(msg, " ", 7)
	if len(hdr) != 7 {
		t.Fatalf("short message %q", msg)
	}
	rest := hdr[6]
	hdr = hdr[:6]
	if strings.HasPrefix(rest, "-") {
		return hdr, "-", strings.TrimPrefix(rest[1:], " ")
	}
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			i++
		case ']':
			return hdr, rest[:i+1], strings.TrimPrefix(rest[i+1:], " ")
		}
	}
	t.Fatalf("no SD end in %q", msg)
	return nil, "", ""
}

func TestRFC5424ThroughRsyslog(t *testing.T) {
	f, err := fsyslog.New(func() fsyslog.Config {
		c := fsyslog.DefaultConfig()
		c.Hostname = "fwd-1.example.net"
		c.ProcID = "42"
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t)
	names := []string{"elastic alert", "mdc alert (not JSON)", "hostile alert", "assessment", "score control"}
	r := testenv.StartRsyslog(t)
	seen := 0
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			var batch [][]byte
			for _, n := range names {
				out, err := f.Format(nil, recs[n])
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, out)
			}
			// A message the formatter would never write: a multi-line MSG behind a BOM, with a
			// forged header after the line break. Octet counting and UDP carry it whole; LF
			// framing turns the line breaks into spaces so it stays one message.
			multi := "<14>1 2024-06-03T12:00:00Z fwd-1 app - multi - \xef\xbb\xbfline1\nline2\r\n<13>1 2024-06-03T12:00:00Z forged app - - - injected"
			batch = append(batch, []byte(multi))
			got := sendThrough(t, r, tr, batch, &seen)
			for i, sent := range batch {
				m := got[i]
				want := string(sent)
				if tr.framing == syslog.FramingLF && tr.name != "tls" && tr.name != "udp" {
					want = strings.NewReplacer("\r", " ", "\n", " ").Replace(want)
				}
				hdr, sd, body := split5424(t, want)
				pri := strings.TrimPrefix(strings.TrimSuffix(hdr[0], ">1"), "<")
				check := map[string]string{
					"inputname": strings.Fields(tr.name)[0], "pri": pri, "protocol-version": "1",
					"hostname": hdr[2], "app-name": hdr[3], "procid": hdr[4], "msgid": hdr[5],
					"structured-data": sd, "msg": body, "rawmsg": want,
				}
				if hdr[1] != "-" {
					check["timereported"] = hdr[1]
				}
				for k, v := range check {
					if m.Fields[k] != v {
						t.Errorf("message %d %s = %q, want %q", i, k, m.Fields[k], v)
					}
				}
				if i >= len(names) {
					continue
				}
				params := fsyslog.Params(recs[names[i]])
				el := m.SD[fsyslog.DefaultSDID]
				if len(el) != len(params) || len(m.SD) != 1 {
					t.Errorf("%s: SD %v, want %d params", names[i], m.SD, len(params))
				}
				for _, p := range params {
					if el[p.Name] != cleaned(p.Value) {
						t.Errorf("%s: SD %s = %q, want %q", names[i], p.Name, el[p.Name], cleaned(p.Value))
					}
				}
			}
		})
	}
}

func TestRFC3164ThroughRsyslog(t *testing.T) {
	cfg := fsyslog.DefaultConfig()
	cfg.Header = fsyslog.HeaderRFC3164
	cfg.Hostname = "fwd-1"
	f, err := fsyslog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.StartRsyslog(t)
	rec := alerttest.HostileFieldsAlert()
	out, _ := f.Format(nil, rec)
	c := rsyslogClient(t, r, transports[0], nil)
	allNil(t, c.Send(context.Background(), [][]byte{out}))
	m := r.Messages(t, 1, wait)[0]
	body := string(fsyslog.AppendRawJSON(nil, rec.Raw))
	for k, v := range map[string]string{
		"pri": "162", "protocol-version": "0", "hostname": "fwd-1", "app-name": "defender-for-cloud",
		"msg": " " + body, "rawmsg": string(out), // rsyslog keeps the space after "TAG:" in msg
	} {
		if m.Fields[k] != v {
			t.Errorf("%s = %q, want %q", k, m.Fields[k], v)
		}
	}
	if !strings.HasSuffix(m.Fields["timereported"], "-06-03T12:00:00+00:00") {
		t.Errorf("timereported %q", m.Fields["timereported"])
	}
}

// cleanExt is what an extension value reads back as (see cef.Extension for the rules).
func cleanExt(s string, max int) string {
	var out []byte
	escLen := 0
	s = strings.TrimLeft(s, " ")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		add, w := s[i:i+n], n
		switch {
		case r == utf8.RuneError && n == 1:
			add, w = "\uFFFD", 3
		case r == '\\' || r == '=' || r == '\n' || r == '\r':
			w = 2
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			add, w = " ", 1
		}
		if escLen+w > max {
			break
		}
		i += n
		if len(out) == 0 && add == " " {
			continue
		}
		out = append(out, add...)
		escLen += w
	}
	return strings.TrimRight(string(out), " ")
}

func TestCEFThroughRsyslog(t *testing.T) {
	recs := records(t)
	r := testenv.StartRsyslog(t)
	seen := 0
	for _, header := range []string{fsyslog.HeaderRFC3164, fsyslog.HeaderRFC5424} {
		for _, tr := range transports[:3] {
			t.Run(header+" "+tr.name, func(t *testing.T) {
				cfg := cef.DefaultConfig()
				cfg.Syslog.Header = header
				cfg.Syslog.Hostname = "fwd-1"
				f, err := cef.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				var batch [][]byte
				var sent []*alert.Record
				for _, rec := range recs {
					out, err := f.Format(nil, rec)
					if err != nil {
						t.Fatal(err)
					}
					batch = append(batch, out)
					sent = append(sent, rec)
				}
				got := sendThrough(t, r, tr, batch, &seen)
				for i, rec := range sent {
					m := got[i]
					if m.Fields["rawmsg"] != string(batch[i]) {
						t.Errorf("rawmsg %q, want %q", m.Fields["rawmsg"], batch[i])
					}
					if m.CEF == nil {
						t.Fatalf("%s: liblognorm did not parse the CEF: %s", rec.Kind, m.Line)
					}
					wantHdr := []string{"Microsoft", "Microsoft Defender for Cloud", "1.0"}
					gotHdr := []string{m.CEF.DeviceVendor, m.CEF.DeviceProduct, m.CEF.DeviceVersion}
					if fmt.Sprint(gotHdr) != fmt.Sprint(wantHdr) {
						t.Errorf("header %q", gotHdr)
					}
					if rec.Alert != nil && m.CEF.SignatureID != cleaned(rec.Alert.AlertType) {
						t.Errorf("SignatureID %q, want %q", m.CEF.SignatureID, cleaned(rec.Alert.AlertType))
					}
					if name := cleaned(rec.DisplayName); m.CEF.Name != name {
						t.Errorf("Name %q, want %q", m.CEF.Name, name)
					}
					want := map[string]string{}
					for _, p := range cef.Extension(rec) {
						if v := cleanExt(p.Value, p.Max); v != "" {
							want[p.Key] = v
						}
					}
					if len(m.CEF.Extensions) != len(want) {
						t.Errorf("%s: %d extension keys, want %d: %v", rec.Kind, len(m.CEF.Extensions), len(want), m.CEF.Extensions)
					}
					for k, v := range want {
						if m.CEF.Extensions[k] != v {
							t.Errorf("%s: %s = %q, want %q", rec.Kind, k, m.CEF.Extensions[k], v)
						}
					}
					if header == fsyslog.HeaderRFC3164 && (m.Fields["hostname"] != "fwd-1" || m.Fields["app-name"] != "CEF") {
						t.Errorf("hostname %q app-name %q", m.Fields["hostname"], m.Fields["app-name"])
					}
					if header == fsyslog.HeaderRFC5424 && !strings.HasPrefix(m.Fields["msg"], "CEF:0|") {
						t.Errorf("msg %q does not start with CEF:0|", m.Fields["msg"])
					}
				}
			})
		}
	}
}

// The liblognorm bug the default extension space works around: without the space, the first
// extension key loses its first character. If this starts failing, liblognorm was fixed and
// the default can be revisited.
func TestCEFWithoutExtensionSpaceLosesFirstKeyCharacter(t *testing.T) {
	cfg := cef.DefaultConfig()
	cfg.NoExtensionSpace = true
	f, err := cef.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.StartRsyslog(t)
	out, _ := f.Format(nil, alerttest.ElasticAlert(t))
	allNil(t, rsyslogClient(t, r, transports[0], nil).Send(context.Background(), [][]byte{out}))
	m := r.Messages(t, 1, wait)[0]
	if m.CEF == nil {
		t.Fatalf("not parsed: %s", m.Line)
	}
	if _, ok := m.CEF.Extensions["at"]; !ok {
		t.Errorf("extensions %v: expected the first key cat to arrive as at", m.CEF.Extensions)
	}
}

func TestUDPTruncation(t *testing.T) {
	r := testenv.StartRsyslog(t)
	c := rsyslogClient(t, r, transports[3], func(c *syslog.Config) { c.MaxDatagram = 2048 })
	msg := "<13>1 - h a - - - " + strings.Repeat("é", 3000)
	allNil(t, c.Send(context.Background(), payloads(msg)))
	m := r.Messages(t, 1, wait)[0]
	raw := m.Fields["rawmsg"]
	if len(raw) > 2048 || !strings.HasSuffix(raw, syslog.TruncationMarker) || !utf8.ValidString(raw) || !strings.HasPrefix(msg, strings.TrimSuffix(raw, syslog.TruncationMarker)) {
		t.Errorf("received %d bytes: %q", len(raw), raw)
	}
}

func TestTLSWrongCA(t *testing.T) {
	r := testenv.StartRsyslog(t)
	c := newClient(t, r.TLSAddress(), func(c *syslog.Config) { c.TLS.CAFile = testenv.WrongCAFile(t) })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i, err := range c.Send(ctx, payloads("a", "b")) {
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "not trusted") {
			t.Errorf("payload %d: %v", i, err)
		}
	}
}

func TestTLSWrongServerName(t *testing.T) {
	r := testenv.StartRsyslog(t)
	c := newClient(t, r.TLSAddress(), func(c *syslog.Config) { c.TLS.CAFile = r.CAFile(); c.TLS.ServerName = "siem.example.net" })
	for _, err := range c.Send(context.Background(), payloads("a")) {
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized {
			t.Errorf("%v", err)
		}
	}
}

func TestTLSServerNameFromAddress(t *testing.T) {
	r := testenv.StartRsyslog(t)
	addr := strings.Replace(r.TLSAddress(), "127.0.0.1", "localhost", 1)
	c := newClient(t, addr, func(c *syslog.Config) { c.TLS.CAFile = r.CAFile() })
	allNil(t, c.Send(context.Background(), payloads("<13>1 - h a - - - via localhost")))
	if got := r.Messages(t, 1, wait)[0].Fields["msg"]; got != "via localhost" {
		t.Errorf("msg %q", got)
	}
}

// sendUntilDelivered is the caller's retry loop: resend what failed until nothing fails.
func sendUntilDelivered(t testing.TB, c *syslog.Client, batch [][]byte) {
	t.Helper()
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt == 50 {
			t.Fatalf("%d payloads still failing", len(batch))
		}
		var failed [][]byte
		for i, err := range c.Send(context.Background(), batch) {
			if err != nil {
				if sink.IsPermanent(err) {
					t.Fatalf("permanent error: %v", err)
				}
				failed = append(failed, batch[i])
			}
		}
		batch = failed
		if len(batch) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func numbered(from, to int) [][]byte {
	return numberedPadded(from, to, 0)
}

func numberedPadded(from, to, pad int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, []byte(fmt.Sprintf("<13>1 - h a - - - message-%06d%s", i, strings.Repeat(" ", pad))))
	}
	return out
}

func countDistinct(t testing.TB, msgs []testenv.RsyslogMessage, n int) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[strings.TrimRight(m.Fields["msg"], " ")] = true
	}
	for i := 0; i < n; i++ {
		if k := fmt.Sprintf("message-%06d", i); !seen[k] {
			t.Errorf("%s never arrived", k)
		}
	}
}

// A receiver restarted in the middle of a batch: the part sent before the restart arrived,
// the part sent while it was down fails retryably, and once the caller has retried it,
// every message is at the receiver.
func TestReceiverRestartMidBatch(t *testing.T) {
	for _, tr := range transports[:3] {
		t.Run(tr.name, func(t *testing.T) {
			r := testenv.StartRsyslog(t)
			c := rsyslogClient(t, r, tr, nil)
			batch := numbered(0, 200)
			allNil(t, c.Send(context.Background(), batch[:100]))
			r.Messages(t, 100, wait)
			r.Stop()
			// The connection the client holds is now closed by the receiver; writing into it
			// would succeed locally and lose the messages.
			errs := c.Send(context.Background(), batch[100:])
			var failed [][]byte
			for i, err := range errs {
				if err == nil {
					t.Errorf("payload %d reported delivered while the receiver was down", 100+i)
					continue
				}
				if sink.IsPermanent(err) {
					t.Fatalf("permanent: %v", err)
				}
				failed = append(failed, batch[100+i])
			}
			r.Start(t)
			sendUntilDelivered(t, c, failed)
			countDistinct(t, r.Messages(t, 200, wait), 200)
		})
	}
}

// The receiver stops while a large batch is being written: whatever the timing, after the
// caller retries the failed payloads nothing is missing (duplicates are allowed).
func TestReceiverStopsDuringLargeBatch(t *testing.T) {
	r := testenv.StartRsyslog(t)
	c := rsyslogClient(t, r, transports[0], func(c *syslog.Config) { c.CloseCheck = 200 * time.Millisecond })
	// Large enough (9 MB) that the receiver is still reading when it stops.
	const n = 3000
	batch := numberedPadded(0, n, 3000)
	allNil(t, c.Send(context.Background(), batch[:1]))
	r.Messages(t, 1, wait)
	done := make(chan []error)
	go func() { done <- c.Send(context.Background(), batch) }()
	r.Messages(t, 2, wait) // stop once the batch is arriving
	r.Stop()
	errs := <-done
	var failed [][]byte
	for i, err := range errs {
		if err != nil {
			failed = append(failed, batch[i])
		}
	}
	r.Start(t)
	sendUntilDelivered(t, c, failed)
	// 9 MB through rsyslog's parsers on a loaded machine can take longer than the usual wait;
	// the poll returns as soon as everything is there.
	msgs := r.Messages(t, n, 4*wait)
	countDistinct(t, msgs, n)
	t.Logf("%d of %d failed and were retried; %d messages received", len(failed), n, len(msgs))
}
