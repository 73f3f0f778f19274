package destination

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/config"
)

func load(t *testing.T, env ...string) *config.Config {
	t.Helper()
	c, err := config.Load(env, "")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return c
}

func TestBuildEveryType(t *testing.T) {
	c := load(t,
		"Destinations__splunk__Type=splunk_hec", "Destinations__splunk__Url=https://splunk:8088", "Destinations__splunk__Token=abcdefgh-token",
		"Destinations__rsys__Type=syslog", "Destinations__rsys__Address=tcp://127.0.0.1:514", "Destinations__rsys__Facility=local3", "Destinations__rsys__Severity__High=alert",
		"Destinations__arc__Type=cef", "Destinations__arc__Address=udp://127.0.0.1:514", "Destinations__arc__MinSeverity=Medium",
		"Destinations__qradar__Type=leef", "Destinations__qradar__Address=tcp://127.0.0.1:514", "Destinations__qradar__Delimiter=^",
		"Destinations__lr__Type=logrhythm", "Destinations__lr__Url=https://oc:8085/webhook", "Destinations__lr__Token=lr-secret-token",
		"Destinations__lrsys__Type=logrhythm", "Destinations__lrsys__Transport=syslog", "Destinations__lrsys__Address=tcp://127.0.0.1:514",
		"Destinations__sumo__Type=http", "Destinations__sumo__Url=https://endpoint.collection.sumologic.com/receiver/v1/http/XYZ",
		"Destinations__sumo__Headers__X-Sumo-Category=azure/defender", "Destinations__sumo__Kinds=alert,recommendations",
	)
	built, err := Build(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer func() {
		for _, d := range built.Destinations {
			d.Sink.Close()
		}
	}()
	byName := map[string]int{}
	for i, d := range built.Destinations {
		byName[d.Name] = i
		if d.Formatter == nil || d.Sink == nil {
			t.Errorf("%s: incomplete", d.Name)
		}
	}
	if len(byName) != 7 {
		t.Fatalf("built %d destinations", len(byName))
	}
	// SIEM formats take alerts by default; HEC and HTTP take every kind unless told.
	if k := built.Destinations[byName["arc"]].Filter.Kinds; len(k) != 3 || k[0] != alert.KindAlert || k[2] != alert.KindGraphAlert {
		t.Errorf("cef default kinds %v", k)
	}
	if k := built.Destinations[byName["splunk"]].Filter.Kinds; k != nil {
		t.Errorf("splunk_hec default kinds %v, want all", k)
	}
	if k := built.Destinations[byName["sumo"]].Filter.Kinds; len(k) != 2 || k[1] != alert.KindRecommendation {
		t.Errorf("sumo kinds %v", k)
	}
	if s := built.Destinations[byName["arc"]].Filter.MinSeverity; s != alert.SeverityMedium {
		t.Errorf("min severity %v", s)
	}
	secrets := strings.Join(built.Secrets, " ")
	for _, want := range []string{"abcdefgh-token", "lr-secret-token", "azure/defender"} {
		if !strings.Contains(secrets, want) {
			t.Errorf("secret %q not registered for scrubbing", want)
		}
	}
}

// Every problem of every destination at once, each naming its setting.
func TestBuildReportsEveryProblem(t *testing.T) {
	c := load(t,
		"Destinations__a__Type=splunk",                                // unknown type
		"Destinations__b__Type=splunk_hec", "Destinations__b__Tokn=x", // missing Url and Token, unknown key
		"Destinations__c__Type=syslog", "Destinations__c__Address=ftp://x", "Destinations__c__Kinds=alerts,nonsense",
		"Destinations__d__Type=cef", "Destinations__d__Address=tcp://h:1", "Destinations__d__MinSeverity=Critical", "Destinations__d__RetryMaxAttempts=many",
	)
	_, err := Build(c, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"Destinations__a__Type", "Destinations__b__Url", "Destinations__b__Token", "Destinations__b__tokn",
		"Destinations__c", "nonsense", "Destinations__d__MinSeverity", "Destinations__d__RetryMaxAttempts",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]alert.Kind{"alert": alert.KindAlert, "Alerts": alert.KindAlert, "securescores": alert.KindSecureScore, "unknown": alert.KindUnknown} {
		if got, ok := parseKind(in); !ok || got != want {
			t.Errorf("parseKind(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := parseKind("incident"); ok {
		t.Error("parseKind accepted an unknown kind")
	}
}
