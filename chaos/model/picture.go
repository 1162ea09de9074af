package model

import (
	"bytes"
	"fmt"
	"html"
	"sort"
	"time"

	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

// maxLanes bounds the picture: the fingerprints a violation names come
// first, then the busiest.
const maxLanes = 40

// Picture draws a history as one self-contained HTML page: faults as
// bands, the nemesis' actions as marks, and one lane per fingerprint with
// its episodes as bars (open to end) and its requests as ticks coloured by
// their answer; violations are red crosses. Hovering tells what each is.
func Picture(h *history.History, r Result) []byte {
	c := &checker{h: h, o: Options{}, terminal: h.TerminalSet(), byName: map[string][]*episode{}}
	c.o.setDefaults()
	c.episodes()
	start, end := h.Start, h.End
	if end.Before(start.Add(time.Second)) {
		end = start.Add(time.Second)
	}
	const left, width, laneH, top = 230, 1100, 22, 70
	x := func(t time.Time) float64 {
		f := float64(t.Sub(start)) / float64(end.Sub(start))
		return left + max(0, min(1, f))*width
	}

	// Lanes: fingerprints by violation, then by activity.
	weight := map[string]int{}
	keyOf := map[string]string{}
	for _, e := range c.all {
		weight[e.fp] += 10
		keyOf[e.fp] = e.key
	}
	lanesOfKey := map[string]string{}
	for fp, k := range keyOf {
		lanesOfKey[k] = fp
	}
	for _, v := range r.Violations {
		fp := v.Fingerprint
		if fp == "" {
			fp = lanesOfKey[v.Key]
		}
		weight[fp] += 1 << 20
	}
	var fps []string
	for fp := range weight {
		if fp != "" {
			fps = append(fps, fp)
		}
	}
	sort.Slice(fps, func(i, j int) bool {
		if weight[fps[i]] != weight[fps[j]] {
			return weight[fps[i]] > weight[fps[j]]
		}
		return fps[i] < fps[j]
	})
	if len(fps) > maxLanes {
		fps = fps[:maxLanes]
	}
	lane := map[string]int{}
	for i, fp := range fps {
		lane[fp] = i
	}
	height := top + laneH*len(fps) + 60

	var b bytes.Buffer
	fmt.Fprintf(&b, `<!doctype html><meta charset="utf-8"><title>history %s</title>
<style>body{font:13px sans-serif;margin:16px} text{font:11px monospace} .v{stroke:#d00;stroke-width:2}</style>
<h3>%s — %s, seed %d: %d requests, %d episodes (%d ended), %d controller actions, %d faults, <span style="color:%s">%d violations</span></h3>
<p>Bars: episodes from opening to end (green: open at the end; grey: ended by a phase; black: deleted or deleting). Ticks: requests at their start
(green 201, blue 202, grey 200, orange 503, red 504 or no answer). Purple diamonds: controller actions. Shaded bands: faults. Red crosses: violations.</p>
<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">
`, html.EscapeString(h.Scenario), html.EscapeString(h.Scenario), start.Format(time.RFC3339), h.Seed, len(h.Requests), len(c.all),
		countEnded(c.all), len(h.Actions), len(h.Faults), color(len(r.Violations) > 0), len(r.Violations), left+width+20, height)
	// Time axis.
	for s := 0.0; ; s += axisStep(end.Sub(start)) {
		t := start.Add(time.Duration(s * float64(time.Second)))
		if t.After(end) {
			break
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d">%.0fs</text>`+"\n",
			x(t), top-20, x(t), height-40, x(t)-8, height-25, s)
	}
	// Faults.
	for i, f := range h.Faults {
		heal := f.Heal
		if heal.IsZero() {
			heal = end
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#f4a" fill-opacity="0.12"><title>%s (%v) %s–%s</title></rect>`+"\n",
			x(f.Inject), top-20, max(1, x(heal)-x(f.Inject)), height-60, html.EscapeString(f.Name), f.Blinds, clock(f.Inject), clock(heal))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#a05">%s</text>`+"\n", x(f.Inject)+2, 14+12*(i%3), html.EscapeString(trimTo(f.Name, 24)))
	}
	// Controller actions.
	for _, a := range h.Actions {
		y := top - 10
		if l, ok := lane[a.Fingerprint]; ok {
			y = top + l*laneH + laneH/2
		}
		fmt.Fprintf(&b, `<path d="M%.1f %d l4 4 l-4 4 l-4 -4 z" fill="#70c"><title>action %d %s %s %s at %s %s</title></path>`+"\n",
			x(a.At), y-4, a.Seq, a.Kind, a.Phase, a.Resource, clock(a.At), html.EscapeString(a.Err))
	}
	// Lanes: episodes and requests.
	for i, fp := range fps {
		y := top + i*laneH
		fmt.Fprintf(&b, `<text x="4" y="%d">%s</text><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n",
			y+laneH/2+4, html.EscapeString(trimTo(keyOf[fp], 30)), left, y+laneH, left+width, y+laneH)
		for _, e := range c.all {
			if e.fp != fp {
				continue
			}
			ended, fill := e.ended, "#4a4"
			switch {
			case ended.IsZero():
				ended = end
			case e.endedBy == "deleted" || e.endedBy == "deleting":
				fill = "#333"
			default:
				fill = "#999"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.55"><title>%s (episode %d) %s–%s %s</title></rect>`+"\n",
				x(e.created), y+3, max(1, x(ended)-x(e.created)), laneH-8, fill, e.name, e.seq, clock(e.created), clock(ended), e.endedBy)
		}
	}
	for _, rq := range h.Requests {
		for _, s := range distinctKeys(rq) {
			l, ok := lane[lanesOfKey[s]]
			if !ok {
				continue
			}
			y := top + l*laneH
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5"><title>request %d %s → %d in %s</title></line>`+"\n",
				x(rq.Start), y+2, x(rq.Start), y+laneH-2, statusColor(rq.Status), rq.Seq, rq.Gateway, rq.Status, rq.Duration.Round(time.Millisecond))
		}
	}
	// Violations.
	for _, v := range r.Violations {
		fp := v.Fingerprint
		if fp == "" {
			fp = lanesOfKey[v.Key]
		}
		l, ok := lane[fp]
		if !ok {
			continue
		}
		t := start
		for _, rq := range h.Requests {
			if len(v.Requests) > 0 && rq.Seq == v.Requests[0] {
				t = rq.Start
			}
		}
		y := top + l*laneH + laneH/2
		fmt.Fprintf(&b, `<g class="v"><line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/><line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/><title>%s</title></g>`+"\n",
			x(t)-5, y-5, x(t)+5, y+5, x(t)-5, y+5, x(t)+5, y-5, html.EscapeString(v.String()))
	}
	b.WriteString("</svg>\n<h3>Violations</h3>\n<ul>\n")
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "<li>%s (requests %v, actions %v)</li>\n", html.EscapeString(v.String()), v.Requests, v.Actions)
	}
	b.WriteString("</ul>\n")
	return b.Bytes()
}

// distinctKeys are the signals a request carried, each once.
func distinctKeys(r load.Record) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.Signals {
		if k := s.Key(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func countEnded(es []*episode) int {
	n := 0
	for _, e := range es {
		if !e.ended.IsZero() {
			n++
		}
	}
	return n
}

func axisStep(d time.Duration) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120, 300} {
		if d.Seconds()/s <= 20 {
			return s
		}
	}
	return 600
}

func statusColor(code int) string {
	switch {
	case code == 201:
		return "#2a2"
	case code == 202:
		return "#26c"
	case code >= 200 && code < 300:
		return "#888"
	case code == 503:
		return "#f80"
	}
	return "#d00"
}

func color(bad bool) string {
	if bad {
		return "#d00"
	}
	return "#2a2"
}

func trimTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
