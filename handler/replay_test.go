package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/operator"
)

// deadLettersCall invokes the operator's HTTP function and decodes the "res" output.
func (r *rig) deadLettersCall(t *testing.T, method, path string, params map[string]string, body string, out any) int {
	t.Helper()
	env := hostsim.HTTPEnvelope(method, "http://localhost:7071/api/"+path, params, body)
	res, err := r.host.Invoke(context.Background(), "DeadLetters", env)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded() {
		t.Fatalf("DeadLetters invocation failed: HTTP %d %s", res.Status, res.Body)
	}
	var httpRes struct {
		StatusCode string            `json:"statusCode"`
		Body       string            `json:"body"`
		Headers    map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(res.Response.Outputs["res"], &httpRes); err != nil {
		t.Fatalf("res output: %v in %s", err, res.Body)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(httpRes.Body), out); err != nil {
			t.Fatalf("res body %q: %v", httpRes.Body, err)
		}
	}
	var code int
	for _, c := range httpRes.StatusCode {
		code = code*10 + int(c-'0')
	}
	return code
}

// An operator lists, shows, replays one letter, parks and purges through the HTTP function.
func TestOperatorHTTPFunction(t *testing.T) {
	r := start(t, "DeadLetter__MaxAttempts=2")
	r.hec.Refuse(400)
	_, bodies := allSamples(t)
	if res, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies[:3], 40), 0); err != nil || !res[0].Succeeded() {
		t.Fatalf("forward: %v", err)
	}

	var counts operator.CountsView
	if code := r.deadLettersCall(t, "GET", "deadletters", nil, "", &counts); code != 200 || counts.Total != 3 || counts.Destinations["splunk"]["rejected"].Active != 3 {
		t.Fatalf("counts: HTTP %d %+v", code, counts)
	}
	var list []operator.LetterView
	if code := r.deadLettersCall(t, "GET", "deadletters/list?destination=splunk", map[string]string{"action": "list"}, "", &list); code != 200 || len(list) != 3 {
		t.Fatalf("list: HTTP %d %d letters", code, len(list))
	}
	if list[0].SequenceNumber != 40 || list[0].Partition != "7" || list[0].Record != nil {
		t.Errorf("list entry %+v: want coordinates and no payload", list[0])
	}
	// Message 41 holds one record, the ARM-shaped alert, stored as sent.
	var one operator.LetterView
	if code := r.deadLettersCall(t, "GET", "deadletters/show/splunk/"+list[1].ID, map[string]string{"action": "show", "destination": "splunk", "id": list[1].ID}, "", &one); code != 200 {
		t.Fatalf("show: HTTP %d", code)
	}
	if one.SequenceNumber != 41 || compact(t, one.Record) != compact(t, bodies[1]) {
		t.Errorf("shown record (sequence %d) differs from the original", one.SequenceNumber)
	}
	if code := r.deadLettersCall(t, "GET", "deadletters/show/splunk/nope", map[string]string{"action": "show", "destination": "splunk", "id": "nope"}, "", nil); code != 404 {
		t.Errorf("show of a missing letter: HTTP %d, want 404", code)
	}

	// Still refused: two failed replays park every letter (MaxAttempts=2 counts the first
	// delivery's attempts too).
	var rr struct{ Failed, Parked, Delivered int }
	r.deadLettersCall(t, "POST", "deadletters/replay", map[string]string{"action": "replay"}, `{"destination":"splunk"}`, &rr)
	if rr.Failed != 3 || rr.Parked != 3 {
		t.Fatalf("replay while refused: %+v, want 3 failed and parked", rr)
	}
	// The timer leaves parked letters alone.
	r.hec.Refuse(0)
	tr, _ := r.host.Invoke(context.Background(), "ReplayDeadLetters", hostsim.TimerEnvelope("ReplayDeadLetters", time.Now()))
	if !tr.Succeeded() || r.hec.Count() != 0 {
		t.Fatalf("timer replayed parked letters: %d delivered", r.hec.Count())
	}
	// By hand, one id, parked included.
	r.deadLettersCall(t, "POST", "deadletters/replay", map[string]string{"action": "replay"}, `{"destination":"splunk","id":"`+list[1].ID+`","includeParked":true}`, &rr)
	if rr.Delivered != 1 || r.hec.Count() != 1 {
		t.Fatalf("replay of one id: %+v, receiver %d", rr, r.hec.Count())
	}
	// A purge needs its confirmation.
	if code := r.deadLettersCall(t, "POST", "deadletters/purge", map[string]string{"action": "purge"}, `{"destination":"splunk","includeParked":true}`, nil); code != 400 {
		t.Errorf("unconfirmed purge: HTTP %d, want 400", code)
	}
	var purged map[string]int
	r.deadLettersCall(t, "POST", "deadletters/purge", map[string]string{"action": "purge"}, `{"destination":"splunk","includeParked":true,"confirm":"splunk"}`, &purged)
	if purged["purged"] != 2 || len(r.letters(t)) != 0 {
		t.Errorf("purge: %v, %d left", purged, len(r.letters(t)))
	}
}

// The command line does the same with the same settings.
func TestDeadLettersCommandLine(t *testing.T) {
	r := start(t)
	r.hec.Refuse(503)
	_, bodies := allSamples(t)
	if res, err := r.host.InvokeBatch(context.Background(), "ForwardAlerts", batch(bodies[:2], 1), 0); err != nil || !res[0].Succeeded() {
		t.Fatalf("forward: %v", err)
	}
	cli := func(args ...string) (string, string, int) {
		cmd := exec.Command(handlerBin, append([]string{"deadletters"}, args...)...)
		cmd.Env = r.host.Env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	out, errs, code := cli("list")
	if code != 0 || !strings.Contains(out, "splunk") || !strings.Contains(out, "throttled") || strings.Count(out, "alert") < 2 {
		t.Fatalf("list: code %d\n%s\n%s", code, out, errs)
	}
	if _, errs, code := cli("purge", "-destination", "splunk"); code != 2 || !strings.Contains(errs, "-confirm") {
		t.Errorf("purge without confirmation: code %d %s", code, errs)
	}
	r.hec.Refuse(0)
	out, errs, code = cli("replay", "-destination", "splunk")
	if code != 0 || !strings.Contains(out, `"delivered": 2`) {
		t.Fatalf("replay: code %d\n%s\n%s", code, out, errs)
	}
	if r.hec.Count() != 2 || len(r.letters(t)) != 0 {
		t.Errorf("after replay: receiver %d, letters %d", r.hec.Count(), len(r.letters(t)))
	}
}
