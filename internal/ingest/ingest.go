// Package ingest reads the HTTP deliveries of Alertmanager and of Kubernetes
// Events, enforces the body limits, validates the payload and returns a
// pipeline.Request of normalized signals.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Defaults of Options.
const (
	DefaultMaxBody   = 1 << 20
	DefaultMaxAlerts = 1000
	DefaultMaxLabels = 64
)

// Options configure the readers.
type Options struct {
	// MaxBody bounds a request body, in bytes (413 above). Default: 1 MiB.
	MaxBody int64
	// MaxAlerts bounds the alerts of one webhook (400 above). Default:
	// 1000.
	MaxAlerts int
	// MaxLabels bounds the labels, and the annotations, of one signal; an
	// alert with more is rejected alone. Default: 64.
	MaxLabels int
	// MaxClockSkew is how far in the future a timestamp may lie; beyond
	// it the timestamp is clamped to the receive time. Default:
	// normalize.DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// Limits bound what each signal carries. Default: normalize.Limits{}.
	Limits normalize.Limits
}

func (o *Options) setDefaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxAlerts <= 0 {
		o.MaxAlerts = DefaultMaxAlerts
	}
	if o.MaxLabels <= 0 {
		o.MaxLabels = DefaultMaxLabels
	}
}

// limits are the per-signal limits, the clock skew included.
func (o *Options) limits() normalize.Limits {
	l := o.Limits
	if o.MaxClockSkew > 0 {
		l.MaxClockSkew = o.MaxClockSkew
	}
	return l
}

// Reader reads deliveries.
type Reader struct{ opts Options }

// New returns a Reader.
func New(opts Options) *Reader {
	opts.setDefaults()
	return &Reader{opts: opts}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody checks the media type and reads at most MaxBody bytes. The
// caller must return buf to bufPool once the body is no longer referenced.
func (rd *Reader) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, &pipeline.InputError{Kind: pipeline.UnsupportedMedia, Detail: fmt.Sprintf("content type %q is not JSON", ct)}
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, rd.opts.MaxBody))
	if err != nil {
		bufPool.Put(buf)
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, &pipeline.InputError{Kind: pipeline.TooLarge, Detail: fmt.Sprintf("body exceeds %d bytes", rd.opts.MaxBody)}
		case errors.As(err, &ne) && ne.Timeout():
			return nil, &pipeline.InputError{Kind: pipeline.TimedOut, Detail: "the body did not arrive within the read timeout"}
		}
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Detail: "reading body: " + err.Error()}
	}
	// JSON is UTF-8 (RFC 8259); encoding/json would silently replace bad
	// bytes, storing something the sender never sent.
	if !utf8.Valid(buf.Bytes()) {
		bufPool.Put(buf)
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Detail: "body is not valid UTF-8"}
	}
	return buf, nil
}

// validLabels checks the number of entries and the names of a label or
// annotation map. Names may be any printable UTF-8 (Prometheus 3 allows
// UTF-8 label names) up to 256 bytes. The error's Field is relative to the
// map ("" or `["name"]`); the caller prefixes it.
func (rd *Reader) validLabels(m map[string]string) *pipeline.InputError {
	if len(m) > rd.opts.MaxLabels {
		return &pipeline.InputError{Kind: pipeline.Malformed, Detail: fmt.Sprintf("%d entries exceed the limit of %d", len(m), rd.opts.MaxLabels)}
	}
	for k := range m {
		if k == "" || len(k) > 256 || strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return &pipeline.InputError{Kind: pipeline.Malformed, Field: fmt.Sprintf("[%q]", excerpt(k)),
				Detail: "label name must be 1 to 256 bytes of printable characters"}
		}
	}
	return nil
}

// excerpt bounds a sender's value quoted back in an error or a log line.
func excerpt(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// putBody returns a body buffer to the pool unless it grew unusually large.
func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 4<<20 {
		bufPool.Put(buf)
	}
}

// jsonError turns a decoding error into an InputError naming the field
// when the decoder knows it.
func jsonError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if prefix != "" {
			field = prefix + "." + field
		}
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: field, Detail: fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: prefix, Detail: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: prefix, Detail: "truncated JSON"}
	}
	return &pipeline.InputError{Kind: pipeline.Malformed, Field: prefix, Detail: err.Error()}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
