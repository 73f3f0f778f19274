package drills

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

// 10,000 records in one invocation (100 messages of 100-record arrays, as continuous export
// writes them): one destination takes them all, another refuses them all, and every record is
// accounted for at both.
func TestTenThousandRecordsInOneInvocation(t *testing.T) {
	r := newRig(t)
	// Storing 10,000 letters takes Azurite tens of seconds: give the invocation the host's
	// default budget rather than the drills' short one.
	r.set("Forwarder__FunctionTimeout=00:10:00")
	good := r.hec("splunk", "MaxBatchEvents=500")
	bad := r.hec("refusing", "RetryMaxAttempts=1")
	bad.Refuse(400)
	h := r.start()
	// Short: 100 messages of 100-record arrays; soak: 10,000 one-record messages, the other
	// way the host can bring 10,000 records.
	msgs, per := pick(100, 10000), pick(100, 1)
	var bodies [][]byte
	var ids []string
	for m := range msgs {
		var arr bytes.Buffer
		arr.WriteByte('[')
		for i := range per {
			id := fmt.Sprintf("bulk-%03d-%03d", m, i)
			ids = append(ids, id)
			if i > 0 {
				arr.WriteByte(',')
			}
			arr.Write(alertRecord(t, id, ""))
		}
		arr.WriteByte(']')
		bodies = append(bodies, arr.Bytes())
	}
	// Bounded well inside the 10-minute budget the handler answers by: under -race on a
	// loaded 2-core machine the drill has taken 3.5 minutes (10,000 dead letters beside the
	// deliveries), and what it checks is the accounting, not the speed.
	res := h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, 6*time.Minute))
	t.Logf("%d records in %v: %v", len(ids), res.Elapsed, res.Response.Logs)
	all := r.account(
		ledger{Dest: "splunk", Want: ids, Delivered: hecIDs(t, good)},
		ledger{Dest: "refusing", Want: ids, Delivered: hecIDs(t, bad)},
	)
	if len(all["splunk"]) != 0 || len(all["refusing"]) != len(ids) {
		t.Errorf("letters: %d splunk, %d refusing; want 0 and %d", len(all["splunk"]), len(all["refusing"]), len(ids))
	}
}

// A single record of 1 MB: delivered whole to a destination that takes it, and stored whole,
// byte for byte, for one whose event limit it exceeds.
func TestOneMegabyteRecord(t *testing.T) {
	r := newRig(t)
	big := r.hec("splunk")
	small := r.hec("small", "MaxEventBytes=100000")
	h := r.start()
	size := pick(1<<20, 4<<20)
	rec := alertRecord(t, "one-mb", " "+strings.Repeat("A1b2C3 ", size/7))
	h.mustSucceed(t, h.invoke(t, batch([][]byte{rec}, 9), 0, time.Minute))
	all := r.account(
		ledger{Dest: "splunk", Want: []string{"one-mb"}, Delivered: hecIDs(t, big)},
		ledger{Dest: "small", Want: []string{"one-mb"}, Delivered: hecIDs(t, small)},
	)
	if evs := big.Events(); len(evs) == 1 && !bytes.Equal(evs[0].Event, rec) {
		t.Errorf("the delivered event (%d bytes) differs from the record (%d bytes)", len(evs[0].Event), len(rec))
	}
	ls := all["small"]
	if len(ls) != 1 || ls[0].Reason != "too-large" {
		t.Fatalf("letters %v, want one too-large", reasons(ls))
	}
	got, err := r.store().Get(context.Background(), "small", ls[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Payload, rec) {
		t.Errorf("stored payload (%d bytes) differs from the record (%d bytes)", len(got.Payload), len(rec))
	}
}

// message is one body of a mixed batch and what must become of it.
type message struct {
	name string
	body []byte
	// ids are the alert ids inside, when it decodes.
	ids []string
	// garbage must be stored under the undecodable partition; maybe may go either way.
	garbage, maybe bool
}

func mixedMessages(t *testing.T, prefix string, rnd *rand.Rand) []message {
	valid := func(i int) (string, []byte) {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		return id, alertRecord(t, id, "")
	}
	var ms []message
	add := func(m message) { ms = append(ms, m) }
	id, b := valid(0)
	add(message{name: "valid", body: b, ids: []string{id}})
	_, b = valid(1)
	add(message{name: "truncated", body: b[:len(b)/2], garbage: true})
	random := make([]byte, 700)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	random[0] = 0 // never the start of JSON
	add(message{name: "random bytes", body: random, garbage: true})
	id, b = valid(3)
	latin1 := bytes.Replace(b, []byte(`"Description":"`), []byte("\"Description\":\"caf\xe9 \xff\xfe "), 1)
	add(message{name: "not UTF-8", body: latin1, ids: []string{id}, maybe: true})
	id4, b4 := valid(4)
	id5, b5 := valid(5)
	add(message{name: "array", body: []byte("[" + string(b4) + "," + string(b5) + "]"), ids: []string{id4, id5}})
	add(message{name: "empty", body: nil, garbage: true})
	id, b = valid(7)
	add(message{name: "BOM", body: append([]byte("\ufeff"), b...), ids: []string{id}})
	id, b = valid(8)
	add(message{name: "trailing garbage", body: append(b, " }{ trailing"...), ids: []string{id}, maybe: true})
	add(message{name: "NUL bytes", body: bytes.Repeat([]byte{0}, 64), garbage: true})
	id, b = valid(10)
	add(message{name: "valid at the end", body: b, ids: []string{id}})
	return ms
}

// A batch mixing valid, truncated, random, non-UTF-8 and empty messages, sent as the host
// sends string and binary bodies: the invocation succeeds, every valid record reaches the
// destination, and every message that is not JSON is kept whole under ~undecodable.
func TestMixedGarbageBatch(t *testing.T) {
	r := newRig(t)
	hec := r.hec("splunk")
	h := r.start()
	rnd := rand.New(rand.NewPCG(1, 2))
	var want []string
	for k, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary} {
		rounds := pick(1, 20)
		for round := range rounds {
			prefix := fmt.Sprintf("mixed-%s-%02d", dt, round)
			ms := mixedMessages(t, prefix, rnd)
			bodies := make([][]byte, len(ms))
			for i, m := range ms {
				bodies[i] = m.body
			}
			first := int64(10000*(k+1) + 100*round)
			b := batch(bodies, first)
			b.DataType = dt
			h.mustSucceed(t, h.invoke(t, b, 0, time.Minute))

			undecodable := map[int64]deadletter.Letter{}
			for _, l := range r.letters()[deadletter.UndecodablePartition] {
				if l.Coordinates.SequenceNumber >= first && l.Coordinates.SequenceNumber < first+int64(len(ms)) {
					if _, dup := undecodable[l.Coordinates.SequenceNumber]; dup {
						t.Errorf("%s: two undecodable letters for sequence %d", dt, l.Coordinates.SequenceNumber)
					}
					undecodable[l.Coordinates.SequenceNumber] = l
				}
			}
			delivered := hecIDs(t, hec)
			for i, m := range ms {
				seq := first + int64(i)
				l, stored := undecodable[seq]
				switch {
				case m.garbage && !stored:
					t.Errorf("%s %s: not stored as undecodable", dt, m.name)
				case !m.garbage && !m.maybe && stored:
					t.Errorf("%s %s: stored as undecodable (%s), want it decoded", dt, m.name, l.Error)
				case stored:
					if l.Reason != "undecodable" || l.Destination != deadletter.UndecodablePartition {
						t.Errorf("%s %s: letter %s/%s", dt, m.name, l.Destination, l.Reason)
					}
					for _, id := range m.ids {
						if delivered[id] > 0 {
							t.Errorf("%s %s: both undecodable and delivered", dt, m.name)
						}
					}
					// Kept whole: the bytes the handler was given.
					full, err := r.store().Get(context.Background(), deadletter.UndecodablePartition, l.ID)
					if err != nil {
						t.Fatal(err)
					}
					sent := m.body
					if dt == hostsim.DataTypeString {
						sent = []byte(strings.ToValidUTF8(string(m.body), "\uFFFD"))
					}
					if !bytes.Equal(full.Payload, sent) {
						t.Errorf("%s %s: stored %d bytes, want the %d bytes sent", dt, m.name, len(full.Payload), len(sent))
					}
				default:
					want = append(want, m.ids...)
				}
				if stored {
					t.Logf("%s %s: undecodable (%s)", dt, m.name, l.Error)
				}
			}
		}
	}
	r.account(ledger{Dest: "splunk", Want: want, Delivered: hecIDs(t, hec)})
}

// An HTTPS intake that answers 413 to any body over its limit: the batches are halved until
// they fit, so every record that fits alone is delivered once, and one that cannot fit even
// alone is dead-lettered as too-large.
func TestHTTPIntakeRefusesLargeBodies(t *testing.T) {
	r := newRig(t)
	const limit = 64 << 10
	c := startTLSCollector(t, func(next http.Handler) http.Handler { return limitBody(limit, next) })
	r.dest("intake", "Type=http", "Url="+c.URL, "InsecureSkipVerify=true", "Gzip=false",
		"RetryMaxAttempts=3", "RetryInitialInterval=20ms")
	h := r.start()
	bodies, ids := alerts(t, "intake", pick(50, 500))
	bodies = append(bodies, alertRecord(t, "intake-huge", strings.Repeat("z", 2*limit)))
	ids = append(ids, "intake-huge")
	h.mustSucceed(t, h.invoke(t, batch(bodies, 1), 0, time.Minute))
	all := r.account(ledger{Dest: "intake", Want: ids, Delivered: c.ids()})
	if ls := all["intake"]; len(ls) != 1 || ls[0].AlertID != "intake-huge" || ls[0].Reason != "too-large" {
		t.Errorf("letters %v (%d), want intake-huge alone as too-large", reasons(ls), len(ls))
	}
}

// limitBody answers 413 to bodies longer than limit, before next sees them.
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if int64(len(body)) > limit {
			http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, req)
	})
}
