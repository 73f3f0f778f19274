//go:build unix

package alert

import (
	"syscall"
	"testing"
)

// cpuMeter reports CPU time per operation next to wall time: on a shared machine wall time
// mostly measures the neighbours, CPU time measures the code (GC work included).
type cpuMeter struct{ start int64 }

func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU() cpuMeter { return cpuMeter{start: cpuNow()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-m.start)/float64(b.N), "cpu-ns/op")
}
