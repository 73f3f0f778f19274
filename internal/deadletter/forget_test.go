package deadletter

import (
	"context"
	"slices"
	"testing"
)

// Forget removes exactly the named letters, continuations included, and leaves the others.
func TestForget(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	letters := []Letter{
		letterAt("siem", t0, 1, []byte(`{"a":1}`)),
		letterAt("siem", t0.Add(1e6), 2, randomBytes(t, 3<<20)), // needs continuation entities
		letterAt("siem", t0.Add(2e6), 3, []byte(`{"c":3}`)),
		letterAt("other", t0, 1, []byte(`{"a":1}`)),
	}
	if err := s.Put(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if n := len(rawKeys(t, s, "siem")); n < 4 {
		t.Fatalf("%d entities for siem: the large letter should have continuations", n)
	}
	// The same ids in another destination, and an id never stored, are left alone.
	if err := s.Forget(ctx, "siem", []string{letters[0].ID, letters[1].ID, "20990101T000000.0000000Z-9-00000000000000000009-000000"}); err != nil {
		t.Fatal(err)
	}
	if keys := rawKeys(t, s, "siem"); !slices.Equal(keys, []string{letters[2].ID}) {
		t.Errorf("siem keeps %v, want only %s", keys, letters[2].ID)
	}
	if keys := rawKeys(t, s, "other"); len(keys) != 1 {
		t.Errorf("other destination changed: %v", keys)
	}
	if err := s.Forget(ctx, "siem", nil); err != nil {
		t.Errorf("Forget of nothing: %v", err)
	}
}
