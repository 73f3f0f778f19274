package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/replay"
	"github.com/defender-siem/forwarder/internal/sink"
)

// memStore is an in-memory dead-letter store that records what it was asked.
type memStore struct {
	letters []deadletter.Letter
	fail    error // returned by every call when set
	calls   []string
	purged  []deadletter.ListOptions
}

func (m *memStore) call(name string) error {
	m.calls = append(m.calls, name)
	return m.fail
}

func (m *memStore) List(_ context.Context, o deadletter.ListOptions) ([]deadletter.Letter, error) {
	if err := m.call("List"); err != nil {
		return nil, err
	}
	var out []deadletter.Letter
	for _, l := range m.letters {
		if (o.Destination == "" || l.Destination == o.Destination) && (o.IncludeParked || !l.Parked) {
			l.Payload = nil
			out = append(out, l)
		}
	}
	return out, nil
}

func (m *memStore) Get(_ context.Context, dest, id string) (deadletter.Letter, error) {
	if err := m.call("Get"); err != nil {
		return deadletter.Letter{}, err
	}
	for _, l := range m.letters {
		if l.Destination == dest && l.ID == id {
			return l, nil
		}
	}
	return deadletter.Letter{}, deadletter.ErrNotFound
}

func (m *memStore) Delete(context.Context, string, string) error { return m.call("Delete") }
func (m *memStore) Update(context.Context, deadletter.Letter) error {
	return m.call("Update")
}

func (m *memStore) Counts(context.Context) (map[string]map[sink.Reason]deadletter.Count, error) {
	if err := m.call("Counts"); err != nil {
		return nil, err
	}
	c := map[string]map[sink.Reason]deadletter.Count{}
	for _, l := range m.letters {
		if c[l.Destination] == nil {
			c[l.Destination] = map[sink.Reason]deadletter.Count{}
		}
		n := c[l.Destination][l.Reason]
		if l.Parked {
			n.Parked++
		} else {
			n.Active++
		}
		c[l.Destination][l.Reason] = n
	}
	return c, nil
}

func (m *memStore) Purge(_ context.Context, o deadletter.ListOptions) (int, error) {
	if err := m.call("Purge"); err != nil {
		return 0, err
	}
	m.purged = append(m.purged, o)
	return len(m.letters), nil
}

var failedAt = time.Date(2026, 11, 28, 8, 30, 0, 0, time.UTC)

func sampleStore() *memStore {
	return &memStore{letters: []deadletter.Letter{
		{Destination: "splunk", ID: "0007-00000040-0000", Kind: "alert", Reason: "throttled", Attempts: 3, LastFailure: failedAt,
			AlertID: "2517184898549829577_cdcf", Coordinates: deadletter.Coordinates{Partition: "7", SequenceNumber: 40}, Payload: []byte(`{"AlertType":"x"}`)},
		{Destination: "splunk", ID: "0007-00000041-0000", Kind: "recommendation", Reason: "throttled", Attempts: 10, Parked: true, LastFailure: failedAt,
			Coordinates: deadletter.Coordinates{Partition: "7", SequenceNumber: 41}, Payload: []byte(`{"id":"r"}`)},
		{Destination: "arcsight", ID: "0001-00000002-0001", Kind: "alert", Reason: "unreachable", Attempts: 1, LastFailure: failedAt,
			Coordinates: deadletter.Coordinates{Partition: "1", SequenceNumber: 2, Index: 1}, Payload: []byte("\xff not json")},
	}}
}

func newOperator(s *memStore) *Operator {
	return New(Options{Open: func(context.Context) (Store, error) { return s, nil }})
}

func TestRequestListOptions(t *testing.T) {
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		q       Request
		want    deadletter.ListOptions
		wantErr string
	}{
		{"empty selects everything active", Request{}, deadletter.ListOptions{}, ""},
		{"every field", Request{Destination: "splunk", Since: "2026-11-01T00:00:00Z", IncludeParked: true, Limit: 5},
			deadletter.ListOptions{Destination: "splunk", Since: since, IncludeParked: true, Limit: 5}, ""},
		{"bad time", Request{Since: "yesterday"}, deadletter.ListOptions{}, "since: "},
		{"negative limit", Request{Limit: -1}, deadletter.ListOptions{}, "limit must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.q.ListOptions()
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !IsBadRequest(err) {
					t.Fatalf("err = %v, want a bad request starting %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !got.Since.Equal(tc.want.Since) || got.Destination != tc.want.Destination || got.IncludeParked != tc.want.IncludeParked || got.Limit != tc.want.Limit {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// A purge is carried out only when its confirmation repeats the destination (or says all
// destinations); otherwise the store is not even opened.
func TestPurgeNeedsConfirmation(t *testing.T) {
	tests := []struct {
		q    Request
		want string // the confirmation asked for; empty when the purge goes ahead
	}{
		{Request{Destination: "splunk"}, "splunk"},
		{Request{Destination: "splunk", Confirm: "Splunk"}, "splunk"},
		{Request{Destination: "splunk", Confirm: "all destinations"}, "splunk"},
		{Request{}, "all destinations"},
		{Request{Confirm: "yes"}, "all destinations"},
		{Request{Destination: "splunk", Confirm: "splunk"}, ""},
		{Request{Confirm: "all destinations", IncludeParked: true}, ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.q.Destination, tc.q.Confirm), func(t *testing.T) {
			s := sampleStore()
			n, err := newOperator(s).Purge(context.Background(), tc.q)
			var up *UnconfirmedPurgeError
			if tc.want != "" {
				if !errors.As(err, &up) || up.Want != tc.want || !IsBadRequest(err) {
					t.Fatalf("err = %v, want confirmation %q", err, tc.want)
				}
				if len(s.calls) != 0 {
					t.Errorf("store called %v before the purge was confirmed", s.calls)
				}
				return
			}
			if err != nil || n != 3 || len(s.purged) != 1 || s.purged[0].Destination != tc.q.Destination || s.purged[0].IncludeParked != tc.q.IncludeParked {
				t.Fatalf("purge: %d, %v, store saw %+v", n, err, s.purged)
			}
		})
	}
}

func TestBadRequestsAreNotStoreFailures(t *testing.T) {
	for _, err := range []error{
		&BadRequestError{errors.New("x")},
		&UnconfirmedPurgeError{Want: "a"},
		fmt.Errorf("%w: %q", replay.ErrUnknownDestination, "nope"),
	} {
		if !IsBadRequest(err) {
			t.Errorf("IsBadRequest(%v) = false", err)
		}
	}
	for _, err := range []error{errors.New("table unreachable"), deadletter.ErrNotFound, deadletter.ErrCorrupt, context.DeadlineExceeded} {
		if IsBadRequest(err) {
			t.Errorf("IsBadRequest(%v) = true", err)
		}
	}
}

func TestView(t *testing.T) {
	s := sampleStore()
	json1 := View(s.letters[0], true)
	if string(json1.Record) != `{"AlertType":"x"}` || json1.RecordBase64 != "" {
		t.Errorf("JSON record shown as %q / %q", json1.Record, json1.RecordBase64)
	}
	bin := View(s.letters[2], true)
	if bin.Record != nil || bin.RecordBase64 != "/yBub3QganNvbg==" {
		t.Errorf("non-JSON record shown as %q / %q", bin.Record, bin.RecordBase64)
	}
	if bin.Partition != "1" || bin.SequenceNumber != 2 || bin.RecordIndex != 1 {
		t.Errorf("coordinates %+v", bin)
	}
	summary := View(s.letters[0], false)
	if summary.Record != nil || summary.RecordBase64 != "" {
		t.Error("a summary carries the payload")
	}
	// The JSON names are what the operator's HTTP answers document.
	raw, _ := json.Marshal(summary)
	for _, k := range []string{`"destination":"splunk"`, `"eventHubPartition":"7"`, `"sequenceNumber":40`, `"alertId":"2517184898549829577_cdcf"`, `"attempts":3`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("%s missing from %s", k, raw)
		}
	}
}

func TestCounts(t *testing.T) {
	c, err := newOperator(sampleStore()).Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 3 || c.Parked != 1 || c.Destinations["splunk"]["throttled"] != (deadletter.Count{Active: 1, Parked: 1}) {
		t.Errorf("counts %+v", c)
	}
}

func TestStoreThatCannotBeOpened(t *testing.T) {
	down := errors.New("table service unreachable")
	op := New(Options{Open: func(context.Context) (Store, error) { return nil, down }})
	ctx := context.Background()
	_, err1 := op.Counts(ctx)
	_, err2 := op.List(ctx, Request{})
	_, err3 := op.Show(ctx, "a", "b")
	_, err4 := op.Replay(ctx, Request{})
	_, err5 := op.Purge(ctx, Request{Confirm: "all destinations"})
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if !errors.Is(err, down) || IsBadRequest(err) {
			t.Errorf("action %d: %v, want the store's error", i, err)
		}
	}
}

// cli runs one command line against s.
func cli(s *memStore, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	c, code, ok := ParseCommand(args, &out, &errb)
	if !ok {
		return out.String(), errb.String(), code
	}
	code = Run(context.Background(), newOperator(s), c, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCLIList(t *testing.T) {
	out, errs, code := cli(sampleStore(), "list", "-parked")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `DESTINATION  REASON       ACTIVE  PARKED
arcsight     unreachable  1       0
splunk       throttled    1       1

DESTINATION  ID                  KIND            REASON       ATTEMPTS  PARKED  LAST FAILURE          ALERT
splunk       0007-00000040-0000  alert           throttled    3         false   2026-11-28T08:30:00Z  2517184898549829577_cdcf
splunk       0007-00000041-0000  recommendation  throttled    10        true    2026-11-28T08:30:00Z  
arcsight     0001-00000002-0001  alert           unreachable  1         false   2026-11-28T08:30:00Z  
`
	if out != want {
		t.Errorf("list output:\n%s\nwant:\n%s", out, want)
	}
}

func TestCLIShow(t *testing.T) {
	out, _, code := cli(sampleStore(), "show", "splunk", "0007-00000040-0000")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v LetterView
	var rec bytes.Buffer
	if err := json.Unmarshal([]byte(out), &v); err != nil || json.Compact(&rec, v.Record) != nil || rec.String() != `{"AlertType":"x"}` || v.ID != "0007-00000040-0000" {
		t.Fatalf("show: %v %+v\n%s", err, v, out)
	}
	if !strings.Contains(out, "\n  \"destination\": \"splunk\",\n") {
		t.Errorf("show output is not indented JSON:\n%s", out)
	}
	if _, errs, code := cli(sampleStore(), "show", "splunk", "nope"); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("show of a missing letter: exit %d %q", code, errs)
	}
}

func TestCLIExitCodes(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		storeDown bool
		code      int
		stderr    string
		stdout    string
	}{
		{"no command", nil, false, 2, "usage: handler deadletters", ""},
		{"unknown command", []string{"frob"}, false, 2, "usage: handler deadletters", ""},
		{"help", []string{"help"}, false, 0, "", "usage: handler deadletters"},
		{"flag help", []string{"list", "-h"}, false, 0, "-destination", ""},
		{"show needs two arguments", []string{"show", "splunk"}, false, 2, "usage:", ""},
		{"bad flag", []string{"list", "-frob"}, false, 2, "flag provided but not defined", ""},
		{"bad since", []string{"list", "-since", "soon"}, false, 2, "since:", ""},
		{"negative limit", []string{"replay", "-limit", "-3"}, false, 2, "limit must not be negative", ""},
		{"id without destination", []string{"replay", "-id", "x"}, false, 2, "-id needs -destination", ""},
		{"unknown destination", []string{"replay", "-destination", "nope"}, false, 2, "no such destination", `"considered": 0`},
		{"unconfirmed purge", []string{"purge", "-destination", "splunk"}, false, 2, `repeat -confirm "splunk"`, ""},
		{"unconfirmed purge of all", []string{"purge"}, false, 2, `repeat -confirm "all destinations"`, ""},
		{"confirmed purge", []string{"purge", "-destination", "splunk", "-confirm", "splunk"}, false, 0, "", `"purged": 3`},
		{"store down: list", []string{"list"}, true, 1, "storage down", ""},
		{"store down: purge", []string{"purge", "-confirm", "all destinations"}, true, 1, "storage down", `"purged": 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleStore()
			if tc.storeDown {
				s.fail = errors.New("storage down")
			}
			out, errs, code := cli(s, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			if !strings.Contains(errs, tc.stderr) || (tc.stderr == "" && errs != "") {
				t.Errorf("stderr %q, want it to contain %q", errs, tc.stderr)
			}
			if !strings.Contains(out, tc.stdout) || (tc.stdout == "" && out != "") {
				t.Errorf("stdout %q, want it to contain %q", out, tc.stdout)
			}
		})
	}
}

// The order of letters in the list is the store's; the counts are sorted.
func TestCLIListOrder(t *testing.T) {
	s := sampleStore()
	sort.Slice(s.letters, func(i, j int) bool { return s.letters[i].ID > s.letters[j].ID })
	out, _, _ := cli(s, "list", "-parked")
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[1], "arcsight") || !strings.HasPrefix(lines[5], "splunk       0007-00000041") {
		t.Errorf("order:\n%s", out)
	}
}
