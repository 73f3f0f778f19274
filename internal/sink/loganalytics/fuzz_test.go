package loganalytics

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/defender-siem/forwarder/internal/sink"
)

// FuzzPlan: whatever the payloads, each gets a request or an error, none both; every request
// is one stream's rows, under the size limit as a JSON array.
func FuzzPlan(f *testing.F) {
	f.Add([]byte("Custom-DefenderForCloud\n{\"a\":1}"), []byte("Custom-Other\n{}"), []byte("{}"), 1024)
	f.Add([]byte("\n{}"), []byte("Custom-DefenderForCloud\n{"), []byte("Custom-DefenderForCloud\n{\"x\":\""+strings.Repeat("y", 2000)+"\"}"), 2048)
	f.Fuzz(func(t *testing.T, a, b, c []byte, limit int) {
		limit = 1024 + abs(limit)%4096
		cl := &Client{cfg: Config{Streams: []string{"Custom-DefenderForCloud", "Custom-Other"}, MaxBatchBytes: limit}}
		payloads := [][]byte{a, b, c, a, b, c}
		errs := make([]error, len(payloads))
		reqs := cl.plan(payloads, errs)
		got := make([]int, len(payloads))
		for _, r := range reqs {
			size := 1
			for k, i := range r.idx {
				got[i]++
				stream, row, ok := splitPayload(payloads[i])
				if !ok || stream != r.stream || !bytes.Equal(row, r.rows[k]) {
					t.Fatalf("payload %d planned into stream %q", i, r.stream)
				}
				size += len(row) + 1
			}
			if size > limit || size != r.size {
				t.Fatalf("request of %d bytes (counted %d), limit %d", size, r.size, limit)
			}
		}
		for i := range payloads {
			if (errs[i] == nil) != (got[i] == 1) || got[i] > 1 {
				t.Fatalf("payload %d: planned %d times, error %v", i, got[i], errs[i])
			}
			if errs[i] != nil && !sink.IsPermanent(errs[i]) {
				t.Fatalf("payload %d: refusal not permanent: %v", i, errs[i])
			}
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}

// FuzzAnswer: a hostile or broken answer from the service (any body, any Retry-After) becomes
// one short line of valid UTF-8 with a bounded pause.
func FuzzAnswer(f *testing.F) {
	f.Add(429, `{"error":{"code":"TooManyRequests","message":"slow\ndown"}}`, "5")
	f.Add(403, "<html>\r\n<body>denied</body>", "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(500, "\xff\xfe\x00", "99999999999999999999")
	f.Fuzz(func(t *testing.T, status int, body, ra string) {
		status = 400 + abs(status)%200
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {ra}}, Body: io.NopCloser(strings.NewReader(body))}
		err := classifyResponse(&azcore.ResponseError{StatusCode: status, RawResponse: resp}, "loganalytics: upload", time.Unix(1e9, 0))
		msg := err.Error()
		if strings.ContainsAny(msg, "\r\n\x00") || !utf8.ValidString(msg) || len(msg) > 1000 {
			t.Fatalf("message %q", msg)
		}
		if d, _ := sink.RetryAfter(err); d < 0 || d > sink.MaxRetryAfter {
			t.Fatalf("pause %v", d)
		}
	})
}
