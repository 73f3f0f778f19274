package hostsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// HostVersion is the host version the simulator claims in its headers.
const HostVersion = "4.1040.300.0"

// Host runs a custom handler process the way the Functions host does.
type Host struct {
	// Path is the handler executable.
	Path string
	// Args are extra arguments (host.json customHandler.description.arguments).
	Args []string
	// Env is the app settings, as KEY=VALUE; the worker variables are added to it.
	Env []string
	// Dir is the app root (the working directory and FUNCTIONS_APP_ROOT_PATH).
	Dir string
	// Stdout and Stderr receive the handler's output (the host logs stderr as errors).
	Stdout, Stderr io.Writer

	cmd    *exec.Cmd
	port   int
	client *http.Client
	exited chan struct{}
	err    error
}

// Start launches the handler on a fresh loopback port and waits until GET / answers, as the
// host's readiness probe does (any HTTP answer counts; refused connections mean "not yet").
// It returns the time from exec to the first answer.
func (h *Host) Start(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	h.port = port
	h.client = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	cmd := exec.Command(h.Path, h.Args...)
	cmd.Dir = h.Dir
	cmd.Env = append(append([]string{}, h.Env...),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+uuid.NewString(),
		"FUNCTIONS_HTTPWORKER_ID="+uuid.NewString(),
		"FUNCTIONS_APP_ROOT_PATH="+h.Dir,
	)
	cmd.Stdout, cmd.Stderr = h.Stdout, h.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start handler: %w", err)
	}
	h.cmd = cmd
	h.exited = make(chan struct{})
	go func() { h.err = cmd.Wait(); close(h.exited) }()

	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL("/"), nil)
		resp, err := h.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return time.Since(start), nil
		}
		select {
		case <-h.exited:
			return 0, fmt.Errorf("handler exited before it answered: %v", h.err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = h.Stop(time.Second)
			return 0, fmt.Errorf("handler did not answer GET / within %v", timeout)
		}
	}
}

// URL returns the handler URL for path.
func (h *Host) URL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(h.port) + path
}

// PID returns the handler's process id.
func (h *Host) PID() int { return h.cmd.Process.Pid }

// Exited is closed when the handler process ends.
func (h *Host) Exited() <-chan struct{} { return h.exited }

// ExitCode returns the handler's exit code once Exited is closed (-1 when it was killed by a
// signal), and -1 while it runs.
func (h *Host) ExitCode() int {
	select {
	case <-h.exited:
		return h.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the handler process.
func (h *Host) Signal(sig os.Signal) error { return h.cmd.Process.Signal(sig) }

// Stop sends SIGTERM, as the host does on shutdown, and kills the process group after grace.
func (h *Host) Stop(grace time.Duration) error {
	if h.cmd == nil {
		return nil
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.exited
	}
	var ee *exec.ExitError
	if h.err != nil && !errors.As(h.err, &ee) {
		return h.err
	}
	return nil
}

// Result is the handler's answer to one invocation.
type Result struct {
	// Status is the HTTP status; only 2xx counts as success for the host.
	Status int
	// Response is the decoded body of a 2xx answer.
	Response InvokeResponse
	// Body is the raw answer.
	Body []byte
	// Elapsed is the round-trip time.
	Elapsed time.Duration
}

// InvokeResponse mirrors the host's HttpScriptInvocationResult.
type InvokeResponse struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []string                   `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// Succeeded reports whether the host would count the invocation as succeeded: a 2xx answer
// whose body is JSON.
func (r Result) Succeeded() bool {
	return r.Status >= 200 && r.Status < 300 && json.Valid(r.Body)
}

// Invoke POSTs one invocation body to /<function> with the host's headers.
func (h *Host) Invoke(ctx context.Context, function string, body []byte) (Result, error) {
	return h.InvokeStream(ctx, function, bytes.NewReader(body), int64(len(body)))
}

// InvokeStream is Invoke with a body read from r as it is sent: length is its Content-Length,
// or -1 to send it chunked. It lets a test send a body too large to hold, or one that
// trickles.
func (h *Host) InvokeStream(ctx context.Context, function string, r io.Reader, length int64) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL("/"+function), r)
	if err != nil {
		return Result{}, err
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", uuid.NewString())
	req.Header.Set("X-Azure-Functions-HostVersion", HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Result{}, fmt.Errorf("invoke %s: read answer: %w", function, err)
	}
	res := Result{Status: resp.StatusCode, Body: raw, Elapsed: time.Since(start)}
	if res.Succeeded() {
		if err := json.Unmarshal(raw, &res.Response); err != nil {
			return res, fmt.Errorf("invoke %s: answer is not an invocation result: %w", function, err)
		}
	}
	return res, nil
}

// InvokeBatch sends an Event Hubs batch and, while the handler fails it, runs it again as the
// host's retry policy does (the same events, Metadata.RetryContext counting up), at most
// maxRetries times. It returns every attempt's result, the last one deciding.
func (h *Host) InvokeBatch(ctx context.Context, function string, b Batch, maxRetries int) ([]Result, error) {
	var results []Result
	var retry *RetryContext
	for attempt := 0; ; attempt++ {
		body, err := b.Envelope(retry)
		if err != nil {
			return results, err
		}
		res, err := h.Invoke(ctx, function, body)
		if err != nil {
			return results, err
		}
		results = append(results, res)
		if res.Succeeded() || attempt >= maxRetries {
			return results, nil
		}
		retry = &RetryContext{RetryCount: attempt + 1, MaxRetryCount: -1, Exception: fmt.Sprintf("Response status code does not indicate success: %d", res.Status)}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
