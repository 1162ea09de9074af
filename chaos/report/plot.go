package report

import (
	"image/color"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/alertgate/gateway/chaos/run"
)

var statusColors = map[int]color.RGBA{
	200: {R: 120, G: 120, B: 120, A: 255},
	201: {R: 30, G: 150, B: 60, A: 255},
	202: {R: 40, G: 100, B: 200, A: 255},
	503: {R: 240, G: 140, B: 0, A: 255},
	504: {R: 200, G: 30, B: 30, A: 255},
	0:   {R: 0, G: 0, B: 0, A: 255},
}

// Plot draws a scenario's requests over time: one point per request at its
// start, its latency on a log scale, coloured by status; fault windows are
// shaded (a paused gateway in blue), each recovery is a vertical line, and
// each remediation-controller action a purple mark along the bottom.
func Plot(res *run.Result, path string) error {
	p := plot.New()
	p.Title.Text = res.Scenario
	p.X.Label.Text = "seconds since the scenario started"
	p.Y.Label.Text = "latency (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true

	byStatus := map[int]plotter.XYs{}
	maxX, minY, maxY := 1.0, 0.1, 10.0
	for _, r := range res.Records {
		x := r.Start.Sub(res.Start).Seconds()
		y := max(float64(r.Duration.Microseconds())/1000, 0.05)
		byStatus[r.Status] = append(byStatus[r.Status], plotter.XY{X: x, Y: y})
		maxX, maxY, minY = max(maxX, x), max(maxY, y), min(minY, y)
	}
	maxX = max(maxX, res.Duration.Seconds())

	// Fault windows first, so the points are drawn over them.
	for _, w := range Windows(res) {
		poly, err := plotter.NewPolygon(plotter.XYs{
			{X: w.From.Seconds(), Y: minY}, {X: w.To.Seconds(), Y: minY},
			{X: w.To.Seconds(), Y: maxY * 2}, {X: w.From.Seconds(), Y: maxY * 2},
		})
		if err != nil {
			return err
		}
		poly.Color = color.NRGBA{R: 220, G: 60, B: 60, A: 45}
		if strings.HasPrefix(w.Fault, "gateway-pause") {
			poly.Color = color.NRGBA{R: 60, G: 90, B: 220, A: 45}
		}
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	if ws := Windows(res); len(ws) > 0 {
		var xys plotter.XYs
		var names []string
		for i, w := range ws {
			// Stagger the names so that overlapping windows stay legible.
			xys = append(xys, plotter.XY{X: w.From.Seconds(), Y: maxY * (1.8 - 0.35*float64(i%3))})
			names = append(names, w.Fault)
		}
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: names})
		if err != nil {
			return err
		}
		for i := range labels.TextStyle {
			labels.TextStyle[i].Color = color.NRGBA{R: 150, G: 30, B: 30, A: 255}
			labels.TextStyle[i].Font.Size = vg.Points(7)
		}
		p.Add(labels)
	}
	for _, rc := range res.Recoveries {
		x := rc.HealedAt.Add(rc.After).Sub(res.Start).Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: minY}, {X: x, Y: maxY * 2}})
		if err != nil {
			return err
		}
		l.Color = statusColors[201]
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
	}
	if h := res.History; h != nil && len(h.Actions) > 0 {
		var xys plotter.XYs
		for _, a := range h.Actions {
			xys = append(xys, plotter.XY{X: a.At.Sub(res.Start).Seconds(), Y: minY * 1.3})
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = color.RGBA{R: 130, G: 30, B: 190, A: 255}
		s.GlyphStyle.Radius = vg.Points(2.5)
		s.GlyphStyle.Shape = draw.TriangleGlyph{}
		p.Add(s)
		p.Legend.Add("controller action", s)
	}
	codes := make([]int, 0, len(byStatus))
	for c := range byStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		s, err := plotter.NewScatter(byStatus[c])
		if err != nil {
			return err
		}
		col, ok := statusColors[c]
		if !ok {
			col = color.RGBA{R: 150, G: 0, B: 150, A: 255}
		}
		s.GlyphStyle.Color = col
		s.GlyphStyle.Radius = vg.Points(2)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(s)
		p.Legend.Add(statusName(c), s)
	}
	p.X.Min, p.X.Max = 0, maxX*1.02
	p.Y.Min, p.Y.Max = minY, maxY*2
	return p.Save(9*vg.Inch, 4*vg.Inch, path)
}
