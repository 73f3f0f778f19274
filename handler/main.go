// Command handler is the Azure Functions custom handler that forwards Microsoft Defender for
// Cloud exports from Event Hubs to SIEMs. The Functions host starts it with
// FUNCTIONS_CUSTOMHANDLER_PORT set and sends it one HTTP request per invocation. Run with
// "deadletters …" it is the operator's command line for the dead-letter table instead; "help"
// and "version" say what it is.
//
// This package only wires the parts together; each part lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/deadletter"
	"github.com/defender-siem/forwarder/internal/destination"
	"github.com/defender-siem/forwarder/internal/operator"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/server"
)

// shutdownGrace is how long in-flight invocations may run on after SIGTERM. The host gives a
// worker a short grace period on shutdown; an invocation cut short answers 500 (or not at all)
// and the host runs its batch again elsewhere, so nothing is lost, only repeated.
const shutdownGrace = 25 * time.Second

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT says otherwise. Without one
// the heap grows to twice what a large batch keeps live; with it, the collector works harder
// near the limit instead. 50 MiB of Go memory plus the binary's own pages keeps a worker
// handling two 1,000-event batches of typical alerts at once under 64 MB of RSS, also when,
// over minutes, their largest moments coincide (54 MiB peaked at 66 MB in a ten-minute soak);
// at 46 MiB the collector's time at that size shows (about a tenth more CPU per record).
const defaultMemoryLimit = 50 << 20

// defaultGCPercent is GOGC unless set. At the default batch size (100 events) the live heap is
// a few megabytes, so the standard 100 collects after every few invocations and the collector
// took about a tenth of a core's time; 200 halves that for a few megabytes more, and large
// batches are bounded by the memory limit either way.
const defaultGCPercent = 200

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usage is the answer to "handler help".
const usage = `usage: handler [command]

Without a command the handler serves the Functions host: it listens on 127.0.0.1 at
FUNCTIONS_CUSTOMHANDLER_PORT and reads its settings (Destinations__…, DeadLetter__…,
Forwarder__…) from the environment. The host starts it so; to run it by hand, set those
variables yourself.

Commands:
  deadletters <command>   list, show, replay or purge dead letters ("handler deadletters help")
  version                 the build: module version, VCS revision and time, Go version
  help                    this text
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "deadletters":
			return deadletters(args[1:], stdout, stderr)
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case "version", "--version":
			fmt.Fprint(stdout, version())
			return 0
		}
		fmt.Fprintf(stderr, "unknown command %q: run without arguments (as the Functions host does), or see \"handler help\"\n", args[0])
		return 2
	}
	appRoot := os.Getenv("FUNCTIONS_APP_ROOT_PATH")
	if appRoot == "" {
		appRoot, _ = os.Getwd()
	}
	cfg, err := config.Load(os.Environ(), appRoot)
	if err == nil && cfg.Port == 0 {
		err = errors.New("FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Functions host sets it; set it yourself to run the handler by hand")
	}
	if err != nil {
		return startupError(stderr, err)
	}
	app, err := build(cfg, stdout)
	if err != nil {
		return startupError(stderr, err)
	}
	defer app.close()
	return serve(cfg, app, stderr)
}

// version describes the build from the information the Go toolchain stamps into the binary.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "handler: no build information in this binary\n"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	orUnknown := func(v string) string {
		if v == "" {
			return "unknown"
		}
		return v
	}
	revision := orUnknown(settings["vcs.revision"])
	if settings["vcs.modified"] == "true" {
		revision += " (modified)"
	}
	return fmt.Sprintf("handler %s\nmodule:   %s\nrevision: %s\ntime:     %s\ngo:       %s\n",
		orUnknown(bi.Main.Version), bi.Main.Path, revision, orUnknown(settings["vcs.time"]), bi.GoVersion)
}

func startupError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "configuration error, the handler will not start:\n%v\n", err)
	return 2
}

type app struct {
	log      *slog.Logger
	scrub    *secret.Scrubber
	dests    []pipeline.Destination
	store    *lazyStore
	pipeline *pipeline.Pipeline
	// graph is nil unless the Graph input is configured.
	graph server.GraphPoller
}

func (a *app) close() {
	for _, d := range a.dests {
		_ = d.Sink.Close()
	}
}

// operator is the dead-letter operator over the lazily opened store, for the HTTP functions and
// the command line alike.
func (a *app) operator() *operator.Operator {
	return operator.New(operator.Options{
		Open: func(ctx context.Context) (operator.Store, error) {
			s, err := a.store.get(ctx)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		Destinations: a.dests,
		MaxAttempts:  a.store.cfg.MaxAttempts,
		Logger:       a.log,
		Scrub:        a.scrub.String,
	})
}

// build turns the configuration into a running pipeline. It does no network I/O, so the handler
// answers the host's first probe within milliseconds; the dead-letter table is opened on first
// use.
func build(cfg *config.Config, stdout io.Writer) (*app, error) {
	dlCfg, dlErr := deadletter.ConfigFromSettings(cfg.Lookup)
	// Secrets first: nothing may be logged before the scrubber knows them.
	secrets := []string{}
	if v, ok := cfg.Lookup("AzureWebJobsStorage"); ok {
		secrets = append(secrets, v)
	}
	if dlErr == nil {
		secrets = append(secrets, dlCfg.AccountKey, dlCfg.SAS)
	}
	if cfg.Graph != nil {
		secrets = append(secrets, cfg.Graph.Secrets()...)
	}
	boot := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	built, err := destination.Build(cfg, boot)
	if err != nil || dlErr != nil {
		return nil, errors.Join(err, dlErr)
	}
	secrets = append(secrets, built.Secrets...)
	scrub := secret.New(secrets...)
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: scrub.ReplaceAttr}))
	store := &lazyStore{cfg: dlCfg, log: log}
	a := &app{log: log, scrub: scrub, dests: built.Destinations, store: store}
	a.pipeline = pipeline.New(built.Destinations, pipeline.Options{Store: store, Logger: log, Scrub: scrub.String})
	for _, d := range built.Destinations {
		log.Info("destination ready", "destination", d.Name, "type", d.Type)
	}
	if cfg.Graph != nil && cfg.Graph.Enabled {
		poller, err := buildGraph(cfg.Graph, built.Destinations, dlCfg, a.pipeline, log)
		if err != nil {
			return nil, err
		}
		a.graph = poller
	}
	return a, nil
}

func serve(cfg *config.Config, a *app, stderr io.Writer) int {
	// Loopback only: the host is the one caller, and nothing else on the worker should reach
	// the handler.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "listen on %s: %v\n", addr, err)
		return 1
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler: server.New(a.pipeline, a.operator(), server.Options{FunctionTimeout: cfg.FunctionTimeout, MaxRequestBytes: cfg.MaxRequestBytes,
			BodyReadTimeout: cfg.BodyReadTimeout, Logger: a.log, Graph: a.graph}),
		// The body has its own deadline, from the end of the headers (server.Options);
		// ReadTimeout is the backstop for a request no route reads, whose body the server
		// would otherwise wait for without end while it discards it.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadHeaderTimeout + cfg.BodyReadTimeout,
		// No idle timeout (it would default to ReadTimeout): the host keeps its connection
		// to the handler between invocations, and closes idle ones itself.
		IdleTimeout: -1,
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.log.Info("handler listening", "address", addr, "function_timeout", cfg.FunctionTimeout.String())

	select {
	case err := <-done:
		a.log.Error("server stopped", "err", err)
		return 1
	case sig := <-sigs:
		a.log.Info("shutting down: no new invocations, finishing those in flight", "signal", sig.String(), "grace", shutdownGrace.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	// Shortly before the grace ends, cancel what is still running so that it answers (500,
	// the host retries the batch) instead of being cut off mid-write.
	stopInflight := time.AfterFunc(shutdownGrace-5*time.Second, cancelBase)
	defer stopInflight.Stop()
	if err := srv.Shutdown(ctx); err != nil {
		a.log.Error("in-flight invocations did not finish within the grace period", "err", err)
		return 1
	}
	a.log.Info("handler stopped")
	return 0
}

// lazyStore opens the dead-letter table on first use, so start-up does no network I/O and a
// storage outage at start costs dead letters (500s) rather than a handler that cannot start.
type lazyStore struct {
	cfg deadletter.Config
	log *slog.Logger

	mu    sync.Mutex
	store *deadletter.Store
}

func (l *lazyStore) get(ctx context.Context) (*deadletter.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.store != nil {
		return l.store, nil
	}
	s, err := deadletter.New(ctx, l.cfg, l.log)
	if err != nil {
		return nil, err
	}
	l.store = s
	return s, nil
}

func (l *lazyStore) Forget(ctx context.Context, destination string, ids []string) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Forget(ctx, destination, ids)
}

func (l *lazyStore) Put(ctx context.Context, letters []deadletter.Letter) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Put(ctx, letters)
}
