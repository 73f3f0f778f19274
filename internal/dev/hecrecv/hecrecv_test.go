package hecrecv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const token = "recv-test-token"

func post(t *testing.T, ctx context.Context, r *Receiver, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+"/services/collector/event", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Splunk "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func events(ids ...string) string {
	var b bytes.Buffer
	for _, id := range ids {
		ev, _ := json.Marshal(map[string]any{"event": map[string]string{"id": id}})
		b.Write(ev)
	}
	return b.String()
}

// Each fault mode answers as documented and keeps exactly the events Splunk would have indexed.
func TestModes(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(r *Receiver)
		body       string
		wantStatus int
		wantBody   string
		wantHeader [2]string
		wantKept   int
		recvToken  string // the receiver's token, when not the client's
	}{
		{"healthy", func(*Receiver) {}, events("a", "b"), 200, `"code":0`, [2]string{}, 2, ""},
		{"refused", func(r *Receiver) { r.Refuse(503) }, events("a"), 503, `"code":9`, [2]string{}, 0, ""},
		{"retry-after", func(r *Receiver) { r.Refuse(503); r.RetryAfter(90 * time.Second) }, events("a"), 503, `"code":9`, [2]string{"Retry-After", "90"}, 0, ""},
		{"refuse next", func(r *Receiver) { r.RefuseNext(400, 1) }, events("a"), 400, `"code":7`, [2]string{}, 0, ""},
		{"poison", func(r *Receiver) { r.RejectMarker("BAD") }, events("a", "BAD", "c"), 400, `"invalid-event-number":1`, [2]string{}, 1, ""},
		{"poison first", func(r *Receiver) { r.RejectMarker("BAD") }, events("BAD", "b"), 400, `"invalid-event-number":0`, [2]string{}, 0, ""},
		{"bad token", func(*Receiver) {}, events("a"), 403, `"code":4`, [2]string{}, 0, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := token
			if tc.recvToken != "" {
				rt = tc.recvToken
			}
			r, err := Start(rt)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			tc.setup(r)
			resp, body, err := post(t, context.Background(), r, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Errorf("HTTP %d %s, want %d with %s", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if tc.wantHeader[0] != "" && resp.Header.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Errorf("%s: %q, want %q", tc.wantHeader[0], resp.Header.Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
			if r.Count() != tc.wantKept {
				t.Errorf("kept %d events, want %d", r.Count(), tc.wantKept)
			}
		})
	}
}

// RefuseNext and CloseNext last for the requests they name, then the receiver is healthy.
func TestFaultsForNRequests(t *testing.T) {
	r, err := Start(token)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.CloseNext(2)
	for i := range 2 {
		if _, _, err := post(t, context.Background(), r, events("cut")); err == nil {
			t.Errorf("request %d was answered; want its connection closed", i)
		}
	}
	r.RefuseNext(503, 1)
	if resp, _, err := post(t, context.Background(), r, events("busy")); err != nil || resp.StatusCode != 503 {
		t.Errorf("refused request: %v", err)
	}
	if resp, _, err := post(t, context.Background(), r, events("ok")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the faults: %v", err)
	}
	if evs := r.Events(); len(evs) != 1 || !strings.Contains(string(evs[0].Event), "ok") {
		t.Errorf("kept %v, want only the healthy request's event", evs)
	}
	if r.Requests() != 4 {
		t.Errorf("%d requests counted, want 4", r.Requests())
	}
}

// Hang holds requests until Release (answered 503, nothing kept) or until the client gives up.
func TestHang(t *testing.T) {
	r, err := Start(token)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Hang()
	done := make(chan int, 1)
	go func() {
		resp, _, err := post(t, context.Background(), r, events("held"))
		if err != nil {
			done <- 0
			return
		}
		done <- resp.StatusCode
	}()
	for r.Held() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// A client that gives up is let go.
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := make(chan error, 1)
	go func() { _, _, err := post(t, ctx, r, events("gone")); abandoned <- err }()
	for r.Held() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-abandoned; err == nil {
		t.Error("an abandoned request was answered")
	}
	for r.Held() != 1 {
		time.Sleep(5 * time.Millisecond)
	}
	r.Release()
	if status := <-done; status != 503 {
		t.Errorf("released request: HTTP %d, want 503", status)
	}
	if r.Count() != 0 {
		t.Errorf("kept %d events of held requests", r.Count())
	}
}

// serveDirect runs one request through the handler without a network.
func serveDirect(r *Receiver, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/services/collector/event", bytes.NewReader(body))
	req.Header.Set("Authorization", "Splunk "+token)
	w := httptest.NewRecorder()
	r.serve(w, req)
	return w
}

// Whatever the body, the receiver answers like Splunk: 200 only when it kept every event of
// the request, 400 naming how many it kept before the first bad one, and never a panic.
func FuzzServe(f *testing.F) {
	f.Add([]byte(events("a", "b")))
	f.Add([]byte(events("a", "BAD", "c")))
	f.Add([]byte(`{"event":{}}{"event":`))
	f.Add([]byte(`{"time":1.5,"event":"x","fields":{"k":"v"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &Receiver{Token: token, keep: true, marker: "BAD"}
		w := serveDirect(r, body)
		var ans struct {
			Code    int  `json:"code"`
			Invalid *int `json:"invalid-event-number"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
			t.Fatalf("answer %q is not JSON: %v", w.Body.String(), err)
		}
		switch w.Code {
		case http.StatusOK:
			if r.Count() == 0 {
				t.Fatal("200 for a request with no event kept")
			}
		case http.StatusBadRequest:
			if ans.Invalid != nil && *ans.Invalid != r.Count() {
				t.Fatalf("invalid-event-number %d but %d events kept", *ans.Invalid, r.Count())
			}
		default:
			t.Fatalf("HTTP %d", w.Code)
		}
		for _, ev := range r.Events() {
			if len(ev.Event) == 0 {
				t.Fatal("kept an event without an event field")
			}
		}
	})
}

// BenchmarkServe measures the receiver's own cost per 100-event request, so that the
// benchmark tool knows how much of a measurement it is.
func BenchmarkServe(b *testing.B) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = strings.Repeat("x", 900)
	}
	body := []byte(events(ids...))
	r := &Receiver{Token: token}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if w := serveDirect(r, body); w.Code != http.StatusOK {
			b.Fatalf("HTTP %d", w.Code)
		}
	}
}
