package main

import (
	"log/slog"
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
