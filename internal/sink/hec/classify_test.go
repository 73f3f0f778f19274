package hec

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

func TestClassify(t *testing.T) {
	ok := want{ok: true}
	perm := func(r sink.Reason) want { return want{permanent: true, reason: r} }
	retry := func(r sink.Reason) want { return want{reason: r} }
	tests := []struct {
		status int
		body   string
		want   want
	}{
		{200, `{"text":"Success","code":0}`, ok},
		{200, `{"text":"Success","code":0,"ackId":7}`, ok},
		{200, `{"text":"HEC queue is approaching its capacity limit","code":24}`, ok},
		{200, `{"text":"HEC ACK is approaching its capacity limit","code":25}`, ok},
		{200, ``, ok},
		{204, ``, ok},
		{403, `{"text":"Token disabled","code":1}`, perm(sink.ReasonUnauthorized)},
		{401, `{"text":"Token is required","code":2}`, perm(sink.ReasonUnauthorized)},
		{401, `{"text":"Invalid authorization","code":3}`, perm(sink.ReasonUnauthorized)},
		{403, `{"text":"Invalid token","code":4}`, perm(sink.ReasonUnauthorized)},
		{400, `{"text":"No data","code":5}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Invalid data format","code":6,"invalid-event-number":0}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Incorrect index","code":7,"invalid-event-number":1}`, perm(sink.ReasonRejected)},
		{500, `{"text":"Internal server error","code":8}`, retry(sink.ReasonUnreachable)},
		{503, `{"text":"Server is busy","code":9}`, retry(sink.ReasonThrottled)},
		{400, `{"text":"Data channel is missing","code":10}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Invalid data channel","code":11}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Event field is required","code":12}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Event field cannot be blank","code":13}`, perm(sink.ReasonRejected)},
		{400, `{"text":"ACK is disabled","code":14}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Error in handling indexed fields","code":15}`, perm(sink.ReasonRejected)},
		{400, `{"text":"Query string authorization is not enabled","code":16}`, perm(sink.ReasonUnauthorized)},
		{503, `{"text":"HEC is unhealthy, queues are full","code":18}`, retry(sink.ReasonThrottled)},
		{503, `{"text":"HEC is unhealthy, ack service unavailable","code":19}`, retry(sink.ReasonThrottled)},
		{503, `{"text":"HEC is unhealthy, queues are full, ack service unavailable","code":20}`, retry(sink.ReasonThrottled)},
		{400, `{"text":"Invalid token","code":21}`, perm(sink.ReasonUnauthorized)},
		{400, `{"text":"Token disabled","code":22}`, perm(sink.ReasonUnauthorized)},
		{503, `{"text":"Server is shutting down","code":23}`, retry(sink.ReasonThrottled)},
		{429, `{"text":"HEC queue is at capacity","code":26}`, retry(sink.ReasonThrottled)},
		{429, `{"text":"HEC ACK channel is at capacity","code":27}`, retry(sink.ReasonThrottled)},
		{408, ``, retry(sink.ReasonTimeout)},
		{413, ``, perm(sink.ReasonTooLarge)},
		{404, `<html>Not Found</html>`, perm(sink.ReasonRejected)},
		{405, ``, perm(sink.ReasonRejected)},
		{301, ``, perm(sink.ReasonRejected)},
		{502, `<html><body>Bad Gateway</body></html>`, retry(sink.ReasonUnreachable)},
		{504, ``, retry(sink.ReasonUnreachable)},
		{500, `{"text":`, retry(sink.ReasonUnreachable)},
		{400, `{"code":"six"}`, perm(sink.ReasonRejected)},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status)+" "+tt.body, func(t *testing.T) {
			err := classify(tt.status, http.Header{}, parseReply([]byte(tt.body)), []byte(tt.body), time.Now(), func(s string) string { return s })
			checkErrs(t, []error{err}, []want{tt.want})
		})
	}
}

func TestParseReply(t *testing.T) {
	r := parseReply([]byte(`{"text":"Success","code":0,"ackId":12345678901,"extra":{"x":[1]}}`))
	if r.Code == nil || *r.Code != 0 || r.AckID == nil || *r.AckID != 12345678901 || r.Text != "Success" {
		t.Errorf("parsed %+v", r)
	}
	for _, body := range []string{"", "<html>", "null", `{"code":`, `[1]`, `{"code":"x"}`} {
		if r := parseReply([]byte(body)); r.Code != nil || r.AckID != nil || r.InvalidEvent != nil {
			t.Errorf("%q parsed as %+v", body, r)
		}
	}
}

func FuzzReply(f *testing.F) {
	for _, s := range []string{
		`{"text":"Invalid data format","code":6,"invalid-event-number":2}`,
		`{"text":"Success","code":0,"ackId":3}`,
		"<html>\r\n502 Bad Gateway " + testToken + "</html>",
		``, `{"text":"` + strings.Repeat("é", 300) + `"}`,
	} {
		f.Add(400, s, "5")
		f.Add(503, s, "Sat, 28 Nov 2026 04:00:30 GMT")
	}
	scrub := func(s string) string { return strings.ReplaceAll(s, testToken, secret.Mask) }
	f.Fuzz(func(t *testing.T, status int, body, ra string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		err := classify(status, h, parseReply([]byte(body)), []byte(body), time.Now(), scrub)
		if status >= 200 && status < 300 {
			if err != nil {
				t.Fatalf("2xx gave %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("status %d gave no error", status)
		}
		msg := err.Error()
		if strings.Contains(msg, testToken) {
			t.Fatalf("token in %q", msg)
		}
		if strings.ContainsAny(msg, "\n\r") || len(msg) > 700 {
			t.Fatalf("message not one short line: %q", msg)
		}
		if d, _ := sink.RetryAfter(err); d < 0 {
			t.Fatalf("negative retry after %s from %q", d, ra)
		}
	})
}
