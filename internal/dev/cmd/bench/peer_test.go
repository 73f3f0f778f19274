package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hecrecv"
)

// peerShaped is a function module shaped like the peer's: it posts each event on its own and
// reports a failed post through context.log.error.
const peerShaped = `module.exports = async function (context, eventHubMessages) {
  for (const event of eventHubMessages) {
    try {
      const res = await fetch(process.env.SPLUNK_HEC_URL, {
        method: 'POST',
        headers: { Authorization: 'Splunk ' + process.env.SPLUNK_HEC_TOKEN },
        body: JSON.stringify({ sourcetype: process.env.DIAGNOSTIC_LOG_SOURCETYPE, event: event }),
      });
      if (!res.ok) throw new Error('HTTP ' + res.status);
    } catch (err) {
      context.log.error('Error posting to Splunk HTTP Event Collector: ' + err);
    }
  }
  context.done();
};
`

func peerApp(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("the tool reads CPU time from /proc: %v", err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, peerFunction), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, peerFunction, "index.js"), []byte(peerShaped), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPlayPeer(t *testing.T) {
	dir := peerApp(t)
	hec, err := hecrecv.Start(hecToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hec.Close() })
	var bodies [][]byte
	for i := range 30 {
		bodies = append(bodies, fmt.Appendf(nil, `{"SystemAlertId":"%d","AlertDisplayName":"a \"quoted\" name"}`, i))
	}
	ctx := context.Background()
	res, err := playPeer(ctx, dir, hec.URL+"/services/collector/event", hecToken, bodies, 10, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.events == 0 || res.events%10 != 0 || res.failed != 0 {
		t.Fatalf("played %d events, %d failed: want whole batches and no failures", res.events, res.failed)
	}
	// The receiver also got the warm-up batches.
	if got, want := int64(hec.Count()), res.posted; got != want || want != res.events+peerWarmup*10 {
		t.Errorf("the receiver got %d events, want %d (measured and warm-up)", got, want)
	}
	if res.cpu <= 0 || res.wall < 300*time.Millisecond || res.peakRSS == 0 {
		t.Errorf("cpu %v, wall %v, peak RSS %d: want all measured", res.cpu, res.wall, res.peakRSS)
	}
	ev := hec.Events()[0]
	if !strings.Contains(string(ev.Event), `\"SystemAlertId\"`) {
		t.Errorf("first event %s: want the body as the string the function posted", ev.Event)
	}

	// A receiver that refuses makes the function log errors: the tool says so and stops.
	hec.Refuse(503)
	if _, err := playPeer(ctx, dir, hec.URL+"/services/collector/event", hecToken, bodies, 10, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("refusing receiver: error %v, want the failed posts reported", err)
	}
	// A folder without the function is refused before node starts.
	if _, err := playPeer(ctx, t.TempDir(), hec.URL, hecToken, bodies, 10, time.Millisecond); err == nil || !strings.Contains(err.Error(), "event-hubs-hec") {
		t.Errorf("empty folder: error %v, want it named", err)
	}
}
