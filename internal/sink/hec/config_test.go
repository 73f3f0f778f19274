package hec

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

func TestValidate(t *testing.T) {
	good := DefaultConfig()
	good.URL, good.Token = "https://splunk.example:8088", testToken
	tests := []struct {
		name string
		mod  func(c *Config)
		errs []string
	}{
		{"good", func(*Config) {}, nil},
		{"http allowed", func(c *Config) { c.URL = "http://127.0.0.1:8088" }, nil},
		{"ack settings", func(c *Config) { c.UseAck = true }, nil},
		{"empty", func(c *Config) { *c = Config{} }, []string{"URL is required", "Token is required", "MaxBatchBytes", "MaxBatchEvents", "MaxEventBytes", "RequestTimeout"}},
		{"bad URL", func(c *Config) { c.URL = "ftp://user:pw@/x?token=1#f" }, []string{"scheme", "no host", "credentials", "query"}},
		{"prefixed token", func(c *Config) { c.Token = "Splunk " + testToken }, []string{"without the \"Splunk \" prefix"}},
		{"token with newline", func(c *Config) { c.Token = testToken + "\r\nX-Evil: 1" }, []string{"control characters"}},
		{"ack timings", func(c *Config) { c.UseAck, c.AckTimeout, c.AckPollInterval = true, time.Second, 2*time.Second }, []string{"shorter than AckTimeout"}},
		{"ack zero", func(c *Config) { c.UseAck, c.AckTimeout, c.AckPollInterval = true, 0, 0 }, []string{"AckTimeout", "AckPollInterval"}},
		{"tls", func(c *Config) { c.TLS = tlsconf.Config{CAFile: "/nonexistent/ca.pem", ClientCert: "x"} }, []string{"CAFile", "together"}},
		{"user agent", func(c *Config) { c.UserAgent = "a\nb" }, []string{"UserAgent"}},
		{"gzip level 9", func(c *Config) { c.GzipLevel = 9 }, nil},
		{"gzip level 0 is the default", func(c *Config) { c.GzipLevel = 0 }, nil},
		{"gzip level 10", func(c *Config) { c.GzipLevel = 10 }, []string{"GzipLevel must be 1 (fastest) to 9 (smallest), got 10"}},
		{"gzip level negative", func(c *Config) { c.GzipLevel = -1 }, []string{"GzipLevel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := c.Validate()
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error holds the token: %v", err)
			}
			if _, nerr := New(c, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct{ in, event, ack string }{
		{"https://s:8088", "https://s:8088/services/collector/event", "https://s:8088/services/collector/ack"},
		{"https://s:8088/", "https://s:8088/services/collector/event", "https://s:8088/services/collector/ack"},
		{"https://s/services/collector", "https://s/services/collector/event", "https://s/services/collector/ack"},
		{"https://s/services/collector/event", "https://s/services/collector/event", "https://s/services/collector/ack"},
		{"https://s/services/collector/event/1.0/", "https://s/services/collector/event", "https://s/services/collector/ack"},
		{"https://lb.example/splunk", "https://lb.example/splunk/services/collector/event", "https://lb.example/splunk/services/collector/ack"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ev, ack, err := endpoints(tt.in)
			if err != nil || ev != tt.event || ack != tt.ack {
				t.Errorf("got %s %s %v, want %s %s", ev, ack, err, tt.event, tt.ack)
			}
		})
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.URL, c.Token = "https://splunk.example:8088", testToken
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "hec", c)
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
		if strings.Contains(s, testToken) {
			t.Errorf("token printed: %s", s)
		}
		if !strings.Contains(s, secret.Mask) {
			t.Errorf("no redaction marker: %s", s)
		}
	}
	var logs bytes.Buffer
	cl, err := New(c, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// A server that echoes the token back must not get it into errors or logs either.
	f := newFake(t)
	f.respond = func(w http.ResponseWriter, r *http.Request, _ int, _ []int) {
		writeReply(w, 403, `{"text":"Invalid token `+r.Header.Get("Authorization")+`","code":4}`)
	}
	c2 := f.start(t)
	sc, err := New(c2, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	for _, err := range sc.Send(t.Context(), events(2, 100)) {
		if err == nil || strings.Contains(err.Error(), testToken) {
			t.Errorf("error %v", err)
		}
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("token logged: %s", logs.String())
	}
}
