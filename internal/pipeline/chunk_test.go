package pipeline

import (
	"bytes"
	"testing"
	"unsafe"
)

// chunkRecord is one record fed to the chunker: its raw size and what the formatter makes of
// it (out bytes, or a refusal).
type chunkRecord struct {
	raw, out int
	refuse   bool
}

// renderAll runs recs through a chunker as the render step does and returns the payloads,
// what each should hold, and the distinct chunks (backing arrays) they were cut from.
func renderAll(recs []chunkRecord) (payloads, want [][]byte, chunks map[*byte]int) {
	total := 0
	for _, r := range recs {
		total += r.raw
	}
	c := chunker{rawLeft: total}
	chunks = map[*byte]int{}
	for k, r := range recs {
		buf := c.next(r.raw)
		// Each record renders to its own byte value, so a payload overwritten by another
		// shows.
		body := bytes.Repeat([]byte{byte('a' + k%26)}, r.out)
		out := append(buf, body...)
		if r.refuse {
			continue
		}
		p := c.keep(out, r.raw)
		payloads = append(payloads, p)
		want = append(want, body)
		chunks[unsafe.SliceData(c.chunk)] = cap(c.chunk)
	}
	return payloads, want, chunks
}

func repeat(n int, r chunkRecord) []chunkRecord {
	out := make([]chunkRecord, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func TestChunkerGrowth(t *testing.T) {
	big := append(repeat(5, chunkRecord{raw: 100, out: 100}), chunkRecord{raw: 100, out: 200 << 10}, chunkRecord{raw: 100, out: 100})
	tests := []struct {
		name string
		recs []chunkRecord
		// wantChunks is the exact number of chunks, or 0 to check only the bounds.
		wantChunks int
		// firstCap, when not 0, is the capacity the first chunk must have.
		firstCap int
		// maxWaste bounds the capacity allocated beyond the rendered bytes, as a fraction of
		// them, after the first chunk.
		maxWaste float64
	}{
		{name: "a small batch shares one chunk sized to the batch", recs: repeat(10, chunkRecord{raw: 200, out: 250}),
			wantChunks: 1, firstCap: 2000 + 500 + chunkHeadroom},
		{name: "a large batch is cut into chunks of at most maxChunkBytes", recs: repeat(2000, chunkRecord{raw: 8700, out: 9000}),
			maxWaste: 0.15},
		{name: "output shorter than input sizes later chunks by the ratio", recs: repeat(500, chunkRecord{raw: 1000, out: 300}),
			maxWaste: 0.15},
		{name: "output longer than input sizes later chunks by the ratio", recs: repeat(500, chunkRecord{raw: 300, out: 1000}),
			maxWaste: 0.15},
		{name: "a record that outgrows its chunk gets a chunk of its own", recs: big, wantChunks: 3},
		{name: "a refused record leaves no gap", recs: []chunkRecord{{raw: 50, out: 50}, {raw: 50, out: 70, refuse: true}, {raw: 50, out: 60}},
			wantChunks: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payloads, want, chunks := renderAll(tc.recs)
			if len(payloads) != len(want) {
				t.Fatalf("%d payloads, want %d", len(payloads), len(want))
			}
			out := 0
			for k, p := range payloads {
				out += len(p)
				if !bytes.Equal(p, want[k]) {
					t.Fatalf("payload %d holds %.20q…, want %.20q…: a later record overwrote it", k, p, want[k])
				}
				if cap(p) != len(p) {
					t.Errorf("payload %d: cap %d > len %d, so an append to it would overwrite the next", k, cap(p), len(p))
				}
			}
			if tc.wantChunks > 0 && len(chunks) != tc.wantChunks {
				t.Errorf("%d chunks, want %d", len(chunks), tc.wantChunks)
			}
			allocated, largest := 0, 0
			for _, c := range chunks {
				allocated += c
				largest = max(largest, c)
			}
			// Only a record larger than a chunk makes a larger one (twice its size, room for
			// one more like it).
			if largest > max(maxChunkBytes, 2*maxPayload(payloads)) {
				t.Errorf("largest chunk %d bytes, above maxChunkBytes %d", largest, maxChunkBytes)
			}
			if tc.firstCap > 0 {
				for _, c := range chunks {
					if c != tc.firstCap {
						t.Errorf("first chunk cap %d, want %d", c, tc.firstCap)
					}
				}
			}
			if tc.maxWaste > 0 {
				// The first chunk is sized before any ratio is known; every later one from it.
				if waste := float64(allocated-out-firstChunkBytes) / float64(out); waste > tc.maxWaste {
					t.Errorf("allocated %d bytes for %d rendered (%.0f%% beyond them and the first chunk), want at most %.0f%%",
						allocated, out, 100*waste, 100*tc.maxWaste)
				}
			}
			t.Logf("%d payloads, %d bytes, %d chunks, %d bytes allocated", len(payloads), out, len(chunks), allocated)
		})
	}
}

func maxPayload(ps [][]byte) int {
	n := 0
	for _, p := range ps {
		n = max(n, len(p))
	}
	return n
}

// Appending to a payload (as a transport adding a newline might) must not reach into the
// next payload of the same chunk.
func TestChunkerPayloadsDoNotAlias(t *testing.T) {
	payloads, want, _ := renderAll(repeat(3, chunkRecord{raw: 10, out: 10}))
	_ = append(payloads[0], '\n')
	if !bytes.Equal(payloads[1], want[1]) {
		t.Errorf("appending to payload 0 changed payload 1 to %q", payloads[1])
	}
}
