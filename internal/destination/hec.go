package destination

import (
	"log/slog"
	"strconv"
	"strings"

	hecformat "github.com/defender-siem/forwarder/internal/format/hec"
	"github.com/defender-siem/forwarder/internal/pipeline"
	hecsink "github.com/defender-siem/forwarder/internal/sink/hec"
)

func buildHEC(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := hecformat.DefaultConfig()
	fc.Index = r.str("Index", fc.Index)
	fc.Source = r.str("Source", fc.Source)
	fc.SourceType = r.str("SourceType", fc.SourceType)
	fc.Host = r.str("Host", fc.Host)
	r.check(fc.Validate())

	sc := hecsink.DefaultConfig()
	sc.URL = r.required("Url", "the HEC base URL, such as https://splunk.example.com:8088")
	sc.Token = r.secret("Token")
	if sc.Token == "" {
		r.fail("Token", "missing: the HEC token (a Key Vault reference works)")
	}
	sc.TLS = readTLS(r)
	sc.Gzip = r.boolean("Gzip", sc.Gzip)
	sc.GzipLevel = gzipLevel(r, sc.GzipLevel)
	sc.UseAck = r.boolean("UseAck", sc.UseAck)
	sc.MaxBatchBytes = r.integer("MaxBatchBytes", sc.MaxBatchBytes, 1024, 64<<20)
	sc.MaxBatchEvents = r.integer("MaxBatchEvents", sc.MaxBatchEvents, 1, 100000)
	sc.MaxEventBytes = r.integer("MaxEventBytes", sc.MaxEventBytes, 1024, 1<<30)
	sc.RequestTimeout = r.duration("RequestTimeout", sc.RequestTimeout)
	sc.AckTimeout = r.duration("AckTimeout", sc.AckTimeout)
	sc.AckPollInterval = r.duration("AckPollInterval", sc.AckPollInterval)
	if len(r.errs) > 0 {
		return
	}
	if err := sc.Validate(); err != nil {
		r.check(err)
		return
	}
	client, err := hecsink.New(sc, log)
	if err != nil {
		r.check(err)
		return
	}
	d.Formatter = hecformat.New(fc)
	d.Sink = client
}

// gzipLevels are the level names accepted besides the numbers 1 to 9, as compress/gzip
// names them.
var gzipLevels = map[string]int{"bestspeed": 1, "default": 6, "defaultcompression": 6, "bestcompression": 9}

// gzipLevel reads GzipLevel: 1 (fastest) to 9 (smallest), or BestSpeed, Default or
// BestCompression in any letter case. It is checked even when Gzip is off, so that a typo
// shows at start-up rather than on the day compression is turned on.
func gzipLevel(r *reader, def int) int {
	v, ok := r.raw("GzipLevel")
	if !ok {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 9 {
		return n
	}
	if n, ok := gzipLevels[strings.ToLower(v)]; ok {
		return n
	}
	r.fail("GzipLevel", "%q: want 1 (fastest) to 9 (smallest), BestSpeed, Default or BestCompression", v)
	return def
}
