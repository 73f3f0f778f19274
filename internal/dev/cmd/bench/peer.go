package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
)

// peerDriver calls a Node.js Event Hub function with batches of bodies; see its header.
//
//go:embed peerdriver.js
var peerDriver []byte

// peerFunction is the peer's function a Defender export hub would be bound to: the one for
// diagnostic-setting style exports (the others differ only in the sourcetype setting they read).
const peerFunction = "diagnostic_logs"

// peerWarmup batches let V8 compile the hot paths before the measured window, as the handler
// gets a warm-up invocation per partition.
const peerWarmup = 20

// peerRun is what playing the corpus at the Node peer measured.
type peerRun struct {
	// events were played in the measured window; posted counts the warm-up's too, all of
	// which reached the receiver when the run succeeded.
	events, failed, posted int64
	wall, cpu              time.Duration
	peakRSS                int64
}

func (p peerRun) perCPUSecond() float64 {
	if p.cpu <= 0 {
		return 0
	}
	return float64(p.events) / p.cpu.Seconds()
}

func (p peerRun) row(batch int) row {
	rw := row{name: fmt.Sprintf("Node peer (splunk/azure-functions-splunk %s): typical alerts × %d, one POST per event", peerFunction, batch), partitions: 1, peakRSS: p.peakRSS}
	if p.wall > 0 {
		rw.recordsPerSec = float64(p.events) / p.wall.Seconds()
	}
	if p.events > 0 {
		rw.cpuPer1000 = p.cpu * 1000 / time.Duration(p.events)
	}
	return rw
}

// playPeer runs the peer's function (dir is its event-hubs-hec folder, with node_modules) on
// typical alerts in batches of batch for d, posting to url with token, and measures the node
// process from the end of its warm-up to the end of the window.
func playPeer(ctx context.Context, dir, url, token string, bodies [][]byte, batch int, d time.Duration) (peerRun, error) {
	var res peerRun
	if _, err := os.Stat(filepath.Join(dir, peerFunction, "index.js")); err != nil {
		return res, fmt.Errorf("peer: %w (want the event-hubs-hec folder of splunk/azure-functions-splunk)", err)
	}
	tmp, err := os.MkdirTemp("", "bench-peer-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	driver := filepath.Join(tmp, "peerdriver.js")
	if err := os.WriteFile(driver, peerDriver, 0o600); err != nil {
		return res, err
	}
	var lines bytes.Buffer
	for _, b := range bodies[:len(bodies)/batch*batch] {
		if bytes.IndexByte(b, '\n') >= 0 {
			return res, errors.New("peer: a corpus body holds a newline; the driver reads one body per line")
		}
		lines.Write(b)
		lines.WriteByte('\n')
	}
	file := filepath.Join(tmp, "bodies.ndjson")
	if err := os.WriteFile(file, lines.Bytes(), 0o600); err != nil {
		return res, err
	}

	cmd := exec.CommandContext(ctx, "node", driver, dir, peerFunction, file, strconv.Itoa(batch), strconv.Itoa(peerWarmup))
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"SPLUNK_HEC_URL=" + url,
		"SPLUNK_HEC_TOKEN=" + token,
		"DIAGNOSTIC_LOG_SOURCETYPE=azure:defender:alert",
	}
	stderr := &testenv.SyncBuffer{} // written by exec's copying goroutine while the tool may quote it
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("peer: start node: %w", err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	next := func(want string) (string, error) {
		if !out.Scan() {
			return "", fmt.Errorf("peer: node ended before %q: %v %s", want, out.Err(), strings.TrimSpace(stderr.String()))
		}
		line := out.Text()
		if !strings.HasPrefix(line, want) {
			return "", fmt.Errorf("peer: want %q, node said %q %s", want, line, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimPrefix(line, want), nil
	}
	if _, err := next("ready"); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	peakReset := resetPeak(pid) == nil
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return res, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if _, err := io.WriteString(stdin, "stop\n"); err != nil {
		return res, err
	}
	done, err := next("done ")
	if err != nil {
		return res, err
	}
	res.wall = time.Since(start)
	// The driver now waits for stdin to close, so its CPU time stands still.
	cpu1, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	if _, peak, err := memory(pid); err == nil {
		res.peakRSS = peak
		if !peakReset {
			res.peakRSS = -peak
		}
	}
	if _, err := fmt.Sscan(done, &res.events, &res.failed); err != nil {
		return res, fmt.Errorf("peer: %q: %w", done, err)
	}
	res.posted = res.events + peerWarmup*int64(batch)
	if res.failed > 0 {
		return res, fmt.Errorf("peer: %d of %d events failed to post: %s", res.failed, res.events, strings.TrimSpace(stderr.String()))
	}
	return res, nil
}
