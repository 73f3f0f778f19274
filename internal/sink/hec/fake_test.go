package hec

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

const testToken = "0b9e5c7a-1111-4222-8333-944455556666"

// fakeHEC is a HEC endpoint for tests: it checks what every real request must carry, decodes
// gzip and concatenated envelopes, records the events by their "n" and answers as scripted.
type fakeHEC struct {
	t *testing.T
	// respond answers request number req (from 0) holding events ns; nil answers 200 code 0.
	respond func(w http.ResponseWriter, r *http.Request, req int, ns []int)
	// ack answers an ack query for ids; nil answers 400 code 14.
	ack func(w http.ResponseWriter, ids []uint64)

	mu       sync.Mutex
	requests [][]int // the events of each request
	channels map[string]bool
	gzipped  []bool
	bodies   [][]byte // decoded bodies
	ackPolls int
}

func newFake(t *testing.T) *fakeHEC {
	return &fakeHEC{t: t, channels: map[string]bool{}}
}

func (f *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.Method != http.MethodPost {
		t.Errorf("method %s", r.Method)
	}
	if got := r.Header.Get("Authorization"); got != "Splunk "+testToken {
		t.Errorf("Authorization %q", got)
	}
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if _, err := uuid.Parse(ch); err != nil {
		t.Errorf("channel %q is not a UUID: %v", ch, err)
	}
	if ua := r.Header.Get("User-Agent"); ua == "" || strings.HasPrefix(ua, "Go-http-client") {
		t.Errorf("User-Agent %q", ua)
	}
	if r.URL.RawQuery != "" && r.URL.Path != "/services/collector/ack" {
		t.Errorf("query on event request: %s", r.URL)
	}
	var body io.Reader = r.Body
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("gzip: %v", err)
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Errorf("body: %v", err)
	}
	switch r.URL.Path {
	case "/services/collector/ack":
		if got := r.URL.Query().Get("channel"); got != ch {
			t.Errorf("ack channel query %q, header %q", got, ch)
		}
		var q struct {
			Acks []uint64 `json:"acks"`
		}
		if err := json.Unmarshal(raw, &q); err != nil {
			t.Errorf("ack body %q: %v", raw, err)
		}
		f.mu.Lock()
		f.ackPolls++
		f.mu.Unlock()
		if f.ack == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"text":"ACK is disabled","code":14}`)
			return
		}
		f.ack(w, q.Acks)
		return
	case "/services/collector/event":
	default:
		t.Errorf("path %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		t.Errorf("body is a JSON array: %.40q", raw)
	}
	var ns []int
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var env struct {
			Event struct {
				N int `json:"n"`
			} `json:"event"`
		}
		if err := dec.Decode(&env); err == io.EOF {
			break
		} else if err != nil {
			t.Errorf("envelope %d: %v", len(ns), err)
			break
		}
		ns = append(ns, env.Event.N)
	}
	f.mu.Lock()
	req := len(f.requests)
	f.requests = append(f.requests, ns)
	f.channels[ch] = true
	f.gzipped = append(f.gzipped, gz)
	f.bodies = append(f.bodies, raw)
	f.mu.Unlock()
	if f.respond == nil {
		fmt.Fprint(w, `{"text":"Success","code":0}`)
		return
	}
	f.respond(w, r, req, ns)
}

func (f *fakeHEC) polls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ackPolls
}

func (f *fakeHEC) snapshot() [][]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]int(nil), f.requests...)
}

// start serves f on loopback and returns a Config pointing at it.
func (f *fakeHEC) start(t *testing.T) Config {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	cfg.Token = testToken
	return cfg
}

// events returns n payloads whose event carries its index as "n", padded to about size bytes.
func events(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		p := fmt.Sprintf(`{"time":1717405200.123,"sourcetype":"mscs:azure:security:alert","fields":{"kind":"alert"},"event":{"n":%d,"pad":"`, i)
		pad := max(0, size-len(p)-3)
		out[i] = []byte(p + strings.Repeat("x", pad) + `"}}`)
	}
	return out
}

func writeReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}
