package main

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/destination"
)

// GzipLevel is read for splunk_hec and http destinations: the numbers 1 to 9 and the named
// levels are taken, anything else is reported at start-up together with every other problem.
func TestGzipLevelSetting(t *testing.T) {
	hec := []string{
		"Destinations__s__Type=splunk_hec", "Destinations__s__Url=http://127.0.0.1:9", "Destinations__s__Token=" + hecToken,
	}
	http := []string{"Destinations__h__Type=http", "Destinations__h__Url=https://intake.example/x"}
	tests := []struct {
		name string
		env  []string
		errs []string
	}{
		{"hec default", hec, nil},
		{"hec 9", append(hec, "Destinations__s__GzipLevel=9"), nil},
		{"hec named", append(hec, "Destinations__s__GzipLevel=bestSpeed"), nil},
		{"hec 0", append(hec, "Destinations__s__GzipLevel=0"), []string{"Destinations__s__GzipLevel: \"0\": want 1 (fastest) to 9"}},
		{"hec 10 and another problem", append(hec, "Destinations__s__GzipLevel=10", "Destinations__s__MaxBatchEvents=0"),
			[]string{"Destinations__s__GzipLevel: \"10\"", "Destinations__s__MaxBatchEvents"}},
		{"hec word, gzip off", append(hec, "Destinations__s__Gzip=false", "Destinations__s__GzipLevel=fast"), []string{"Destinations__s__GzipLevel: \"fast\""}},
		{"http default", http, nil},
		{"http named", append(http, "Destinations__h__GzipLevel=BestCompression"), nil},
		{"http bad", append(http, "Destinations__h__GzipLevel=-1"), []string{"Destinations__h__GzipLevel: \"-1\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(append([]string{"Forwarder__FunctionTimeout=00:05:00"}, tt.env...), "")
			if err == nil {
				var built *destination.Built
				built, err = destination.Build(cfg, slog.New(slog.DiscardHandler))
				if err == nil {
					for _, d := range built.Destinations {
						_ = d.Sink.Close()
					}
				}
			}
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// Whatever GzipLevel holds, start-up either takes it (exactly the numbers 1 to 9 and the
// named levels) or reports it by name; it never panics and never takes anything else.
func FuzzGzipLevelSetting(f *testing.F) {
	for _, s := range []string{"1", "9", "0", "10", "-1", "BestSpeed", "default", "BESTCOMPRESSION", "6 ", "0x1", "+3", "１", "", "fast\n"} {
		f.Add(s)
	}
	named := map[string]bool{"bestspeed": true, "default": true, "defaultcompression": true, "bestcompression": true}
	f.Fuzz(func(t *testing.T, v string) {
		env := []string{
			"Forwarder__FunctionTimeout=00:05:00",
			"Destinations__s__Type=splunk_hec", "Destinations__s__Url=http://127.0.0.1:9", "Destinations__s__Token=" + hecToken,
			"Destinations__s__GzipLevel=" + v,
		}
		cfg, err := config.Load(env, "")
		if err != nil {
			return // not a setting the loader takes at all (a newline, say): not this test's concern
		}
		built, err := destination.Build(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			for _, d := range built.Destinations {
				_ = d.Sink.Close()
			}
		}
		tv := strings.TrimSpace(v)
		n, nerr := strconv.Atoi(tv)
		valid := tv == "" || (nerr == nil && n >= 1 && n <= 9) || named[strings.ToLower(tv)]
		switch {
		case valid && err != nil:
			t.Fatalf("GzipLevel %q refused: %v", v, err)
		case !valid && err == nil:
			t.Fatalf("GzipLevel %q accepted", v)
		case !valid && !strings.Contains(err.Error(), "Destinations__s__GzipLevel"):
			t.Fatalf("GzipLevel %q: error does not name the setting: %v", v, err)
		}
	})
}
