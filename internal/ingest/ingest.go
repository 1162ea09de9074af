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
	"net/http"
	"strings"
	"sync"

	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Options configure the readers.
type Options struct {
	// MaxBody bounds a request body, in bytes. Default: 1 MiB.
	MaxBody int64
	// MaxAlerts bounds the alerts of one webhook. Default: 1000.
	MaxAlerts int
	// Limits bound what each signal carries. Default: normalize.Limits{}.
	Limits normalize.Limits
}

func (o *Options) setDefaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxAlerts <= 0 {
		o.MaxAlerts = 1000
	}
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
		if errors.As(err, &mbe) {
			return nil, &pipeline.InputError{Kind: pipeline.TooLarge, Detail: fmt.Sprintf("body exceeds %d bytes", rd.opts.MaxBody)}
		}
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Detail: "reading body: " + err.Error()}
	}
	return buf, nil
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
