package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/alertgate/gateway/testenv"
)

var toxicSeq atomic.Int64

// toxic adds a Toxiproxy toxic in front of dep and returns its removal.
// stream is "upstream" (gateway → dependency) or "downstream"; toxicity is
// the probability that a new connection gets the toxic.
func toxic(ctx context.Context, e *testenv.Env, dep testenv.Dependency, typ, stream string, toxicity float64, attrs map[string]any) (Undo, error) {
	name := fmt.Sprintf("%s_%s_%d", typ, stream, toxicSeq.Add(1))
	b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": toxicity, "attributes": attrs})
	if err != nil {
		return nil, err
	}
	p := e.Proxy(dep)
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("fault: add %s toxic to %s: %w", typ, dep, err)
	}
	return func(ctx context.Context) error { return p.Toxics.RemoveToxic(ctx, name) }, nil
}

// undoAll runs undos in reverse order.
func undoAll(us []Undo) Undo {
	return func(ctx context.Context) error {
		var first error
		for i := len(us) - 1; i >= 0; i-- {
			if err := us[i](ctx); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}
