package benchmark

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// scrape reads a gateway's /metrics into a map from each series, as the
// text format writes it (`name` or `name{label="value",...}`), to its
// value; nil when the gateway does not answer.
func scrape(ctx context.Context, base string) map[string]float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// statusCalls is what the status projections of a set of gateways called
// between two scrapes.
type statusCalls struct{ patches, conflicts, gets float64 }

// statusCallsBetween sums alertgate_status_calls_total between two scrapes
// of each gateway.
func statusCallsBetween(before, after []map[string]float64) statusCalls {
	var c statusCalls
	for i := range after {
		if i >= len(before) {
			break
		}
		d := func(series string) float64 { return after[i][series] - before[i][series] }
		c.patches += d(`alertgate_status_calls_total{call="patch",result="ok"}`)
		c.conflicts += d(`alertgate_status_calls_total{call="patch",result="conflict"}`)
		c.gets += d(`alertgate_status_calls_total{call="get",result="ok"}`)
	}
	return c
}
