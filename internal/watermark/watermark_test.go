package watermark

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	az := testenv.StartAzurite(t)
	cfg, err := deadletter.ConfigFromSettings(func(k string) (string, bool) {
		if k == "AzureWebJobsStorage" {
			return az.ConnectionString(), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg, DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ts(base time.Time, d time.Duration) string { return base.Add(d).UTC().Format(time.RFC3339Nano) }

func TestSaveLoadAndTrim(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	st, err := s.Load(ctx, "contoso")
	if err != nil || !st.Mark.IsZero() || len(st.Seen) != 0 {
		t.Fatalf("fresh tenant: %+v, %v", st, err)
	}
	mark := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	next := State{Mark: mark, Seen: []Version{
		{"a", ts(mark, -10*time.Minute)}, // before the window: dropped
		{"b", ts(mark, -4*time.Minute)},
		{"c", ts(mark, 0)},
	}}
	if _, err := s.Save(ctx, "contoso", st, next, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Mark.Equal(mark) {
		t.Errorf("Mark = %v, want %v", got.Mark, mark)
	}
	if got.Has(Version{"a", ts(mark, -10*time.Minute)}) || !got.Has(Version{"b", ts(mark, -4*time.Minute)}) || !got.Has(Version{"c", ts(mark, 0)}) {
		t.Errorf("Seen = %v, want b and c only", got.Seen)
	}
	// Another tenant is separate.
	other, err := s.Load(ctx, "fabrikam")
	if err != nil || !other.Mark.IsZero() {
		t.Errorf("other tenant: %+v, %v", other, err)
	}
}

// A writer holding a stale state must not move the mark back or drop what the other wrote.
func TestConditionalWriteNeverMovesBack(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first, err := s.Save(ctx, "t1", State{}, State{Mark: base}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Both instances read the same state.
	a, _ := s.Load(ctx, "t1")
	b, _ := s.Load(ctx, "t1")
	if _, err := s.Save(ctx, "t1", a, State{Mark: base.Add(10 * time.Minute), Seen: []Version{{"x", ts(base, 10*time.Minute)}}}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// b is stale and older.
	if _, err := s.Save(ctx, "t1", b, State{Mark: base.Add(3 * time.Minute), Seen: []Version{{"y", ts(base, 8*time.Minute)}}}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Load(ctx, "t1")
	if !got.Mark.Equal(base.Add(10 * time.Minute)) {
		t.Errorf("Mark = %v, want the later %v", got.Mark, base.Add(10*time.Minute))
	}
	if !got.Has(Version{"x", ts(base, 10*time.Minute)}) || !got.Has(Version{"y", ts(base, 8*time.Minute)}) {
		t.Errorf("Seen = %v, want both writers' versions", got.Seen)
	}
	_ = first
	// A state for a tenant created concurrently (two first polls) merges too.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Save(ctx, "t2", State{}, State{Mark: base.Add(time.Duration(i) * time.Minute), Seen: []Version{{fmt.Sprint(i), ts(base, time.Duration(i)*time.Minute)}}}, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ = s.Load(ctx, "t2")
	if !got.Mark.Equal(base.Add(3*time.Minute)) || len(got.Seen) != 4 {
		t.Errorf("concurrent first writes: %+v", got)
	}
}

// The seen list is split over several properties when large.
func TestLargeSeenList(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var seen []Version
	for i := range 3000 {
		seen = append(seen, Version{fmt.Sprintf("da63755122767756%04d_-961444813", i), ts(base, -time.Duration(i)*time.Millisecond)})
	}
	if _, err := s.Save(ctx, "big", State{}, State{Mark: base, Seen: seen}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Seen) != len(seen) {
		t.Fatalf("Seen has %d versions, want %d", len(got.Seen), len(seen))
	}
	for _, v := range seen[:10] {
		if !got.Has(v) {
			t.Errorf("missing %v", v)
		}
	}
}
