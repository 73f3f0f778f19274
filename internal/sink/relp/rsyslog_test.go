package relp_test

// Tests against the real receiver: a private rsyslogd with imrelp (testenv.StartRsyslogRELP),
// plain and TLS. What rsyslog writes is compared byte for byte with what was sent.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/relp"
)

const wait = 30 * time.Second

// clientTLS trusts caFile and presents the client certificate imrelp demands.
func clientTLS(t testing.TB, rs *testenv.Rsyslog, caFile string) *tls.Config {
	t.Helper()
	tc := trustCA(t, caFile, "localhost")
	cert, err := tls.LoadX509KeyPair(rs.ClientCertFile(), rs.ClientKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	tc.Certificates = []tls.Certificate{cert}
	return tc
}

func trustCA(t testing.TB, caFile, serverName string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in " + caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

func hostPort(addr string) string {
	_, hp, _ := strings.Cut(addr, "://")
	return hp
}

// hostileMessages are messages a formatter could produce from attacker-controlled fields:
// RELP carries each as one transaction whatever it holds, so each must arrive whole.
func hostileMessages(tag string) []string {
	return []string{
		"<134>1 2026-11-28T08:00:00.123Z fwd-1 defender - alert [alert@32473 alertId=\"" + tag + "-1\"] plain",
		"<134>1 2026-11-28T08:00:00Z fwd-1 defender - alert - " + tag + "-2 line one\nline two\n<13>1 forged second message",
		"<134>1 2026-11-28T08:00:00Z fwd-1 defender - alert - " + tag + "-3 \"quotes\" \\backslash\\ ] ü漢字 \t tab",
		"<134>1 2026-11-28T08:00:00Z fwd-1 defender - alert - " + tag + "-4 " + strings.Repeat("long-", 40000),
		"CEF:0|Microsoft|Defender|1|x|" + tag + "-5|5| cs1=a\\=b msg=pipe \\| newline \\n",
	}
}

func TestThroughImrelp(t *testing.T) {
	rs := testenv.StartRsyslogRELP(t)
	tests := []struct {
		name  string
		input string
		addr  string
		tls   *tls.Config
	}{
		{"plain", "relp", rs.RELPAddress(), nil},
		{"tls", "relptls", rs.RELPTLSAddress(), clientTLS(t, rs, rs.CAFile())},
	}
	seen := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := relp.DefaultConfig()
			cfg.Address = hostPort(tc.addr)
			cfg.TLS = tc.tls
			cfg.Window = 2 // fewer than the batch, so the window slides
			c, err := relp.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msgs := hostileMessages(tc.name)
			var batch [][]byte
			for _, m := range msgs {
				batch = append(batch, []byte(m))
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			for i, err := range c.Send(ctx, batch) {
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			// The answer came after the write (direct queue): the output holds them now.
			got := rs.Messages(t, seen+len(msgs), 0)
			seen = len(got)
			got = got[len(got)-len(msgs):]
			for i, m := range got {
				if in := m.Fields["inputname"]; in != tc.input {
					t.Errorf("message %d arrived on %q, want %q", i, in, tc.input)
				}
				if raw := m.Fields["rawmsg"]; raw != msgs[i] {
					t.Errorf("message %d arrived as\n%.300q\nwant\n%.300q", i, raw, msgs[i])
				}
			}
		})
	}
}

// A client that does not trust the receiver's certificate fails permanently, naming the
// certificate, and rsyslog writes nothing.
func TestImrelpTLSWrongCA(t *testing.T) {
	rs := testenv.StartRsyslogRELP(t)
	cfg := relp.DefaultConfig()
	cfg.Address = hostPort(rs.RELPTLSAddress())
	cfg.TLS = clientTLS(t, rs, testenv.WrongCAFile(t))
	c, err := relp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := c.Send(context.Background(), [][]byte{[]byte("<13>1 - - - - - wrong CA")})
	if !sink.IsPermanent(errs[0]) || sink.ReasonOf(errs[0]) != sink.ReasonUnauthorized || !strings.Contains(errs[0].Error(), "certificate") {
		t.Fatalf("got %v, want a permanent unauthorized error naming the certificate", errs[0])
	}
	if n := len(rs.Messages(t, 0, 0)); n != 0 {
		t.Errorf("rsyslog wrote %d messages", n)
	}
}

// Many batches over one session, more transactions than the window: every message arrives
// exactly once, in order, and the client keeps one session.
func TestImrelpManyBatches(t *testing.T) {
	rs := testenv.StartRsyslogRELP(t)
	cfg := relp.DefaultConfig()
	cfg.Address = hostPort(rs.RELPAddress())
	c, err := relp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const batches, per = 10, 500
	var want []string
	for b := range batches {
		var batch [][]byte
		for i := range per {
			m := fmt.Sprintf("<13>1 - host app - - - batch %d message %d", b, i)
			want = append(want, m)
			batch = append(batch, []byte(m))
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		for i, err := range c.Send(ctx, batch) {
			if err != nil {
				t.Fatalf("batch %d message %d: %v", b, i, err)
			}
		}
		cancel()
	}
	got := rs.Messages(t, len(want), 0)
	if len(got) != len(want) {
		t.Fatalf("rsyslog wrote %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Fields["rawmsg"] != want[i] {
			t.Fatalf("message %d is %q, want %q", i, got[i].Fields["rawmsg"], want[i])
		}
	}
}

// BenchmarkImrelp measures delivery to a real imrelp (direct queue, JSON-lines output): each
// message is answered after rsyslog wrote it, so this is acknowledged throughput. Run with
// go test -run '^$' -bench Imrelp -benchtime 20000x ./internal/sink/relp/
func BenchmarkImrelp(b *testing.B) {
	rs := testenv.StartRsyslogRELP(b)
	for _, window := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("window %d", window), func(b *testing.B) {
			benchSend(b, hostPort(rs.RELPAddress()), window)
		})
	}
}
