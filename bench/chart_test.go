package bench

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// series is one line of a chart.
type series struct {
	name  string
	color string // "#rrggbb"
	x, y  []float64
	step  bool // a value holds until the next point (what a message shows)
	dots  bool // mark each point
}

// chart is a line chart with linear axes from 0, drawn as SVG by hand (and as a
// PNG without text, to look at where no SVG viewer is).
type chart struct {
	title, xLabel, yLabel string
	series                []series
}

// Size and margins of the drawing, in pixels.
const (
	chartW, chartH                     = 960, 600
	marginL, marginR, marginT, marginB = 80, 30, 50, 120
)

type point struct{ x, y float64 }

// scale returns the axes' ends and tick steps, and maps data to pixels.
func (c chart) scale() (xMax, xStep, yMax, yStep float64, at func(x, y float64) point) {
	for _, s := range c.series {
		for i := range s.x {
			xMax, yMax = max(xMax, s.x[i]), max(yMax, s.y[i])
		}
	}
	xStep, yStep = niceStep(xMax), niceStep(yMax)
	xMax, yMax = math.Ceil(xMax/xStep)*xStep, math.Ceil(yMax/yStep)*yStep
	w, h := float64(chartW-marginL-marginR), float64(chartH-marginT-marginB)
	at = func(x, y float64) point {
		return point{marginL + x/xMax*w, float64(chartH-marginB) - y/yMax*h}
	}
	return xMax, xStep, yMax, yStep, at
}

// niceStep is a tick step of 1, 2 or 5 × 10^k giving about 10 ticks up to v.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	raw := v / 10
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// line returns the pixels a series is drawn through.
func (s series) line(at func(x, y float64) point) []point {
	var out []point
	for i := range s.x {
		if s.step && i > 0 {
			out = append(out, at(s.x[i], s.y[i-1]))
		}
		out = append(out, at(s.x[i], s.y[i]))
	}
	return out
}

// svg draws the chart.
func (c chart) svg() []byte {
	xMax, xStep, yMax, yStep, at := c.scale()
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(c.title))
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		p, q := at(x, 0), at(x, yMax)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`+"\n", p.x, p.y, q.x, q.y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", p.x, p.y+18, num(x))
	}
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		p, q := at(0, y), at(xMax, y)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb"/>`+"\n", p.x, p.y, q.x, q.y)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", p.x-6, p.y+4, num(y))
	}
	o, xe, ye := at(0, 0), at(xMax, 0), at(0, yMax)
	fmt.Fprintf(&b, `<path d="M%.1f %.1f V%.1f H%.1f" fill="none" stroke="#374151"/>`+"\n", ye.x, ye.y, o.y, xe.x)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", (o.x+xe.x)/2, o.y+42, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(22 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (o.y+ye.y)/2, html.EscapeString(c.yLabel))
	for _, s := range c.series {
		c.svgSeries(&b, s, at)
	}
	c.svgLegend(&b)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// svgSeries draws one series.
func (c chart) svgSeries(b *bytes.Buffer, s series, at func(x, y float64) point) {
	pts := make([]string, 0, len(s.x))
	for _, p := range s.line(at) {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.x, p.y))
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), s.color)
	if !s.dots {
		return
	}
	for i := range s.x {
		p := at(s.x[i], s.y[i])
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", p.x, p.y, s.color)
	}
}

// legendAt is where series i's swatch starts: two columns under the x axis.
func legendAt(i int) point {
	return point{float64(marginL + 430*(i%2)), float64(chartH - marginB + 72 + 24*(i/2))}
}

// svgLegend names the series under the plot.
func (c chart) svgLegend(b *bytes.Buffer) {
	for i, s := range c.series {
		p := legendAt(i)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/>`+"\n",
			p.x, p.y, p.x+26, p.y, s.color)
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", p.x+34, p.y+4, html.EscapeString(s.name))
	}
}

// num formats a tick value.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// png draws the chart's grid, axes, lines and legend swatches, without text.
func (c chart) png() []byte {
	xMax, xStep, yMax, yStep, at := c.scale()
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	grid, axis := hexColor("#e5e7eb"), hexColor("#374151")
	for x := 0.0; x <= xMax+xStep/2; x += xStep {
		drawLine(img, at(x, 0), at(x, yMax), grid, 1)
	}
	for y := 0.0; y <= yMax+yStep/2; y += yStep {
		drawLine(img, at(0, y), at(xMax, y), grid, 1)
	}
	drawLine(img, at(0, 0), at(xMax, 0), axis, 1)
	drawLine(img, at(0, 0), at(0, yMax), axis, 1)
	for i, s := range c.series {
		col, pts := hexColor(s.color), s.line(at)
		for j := 1; j < len(pts); j++ {
			drawLine(img, pts[j-1], pts[j], col, 2)
		}
		if s.dots {
			for j := range s.x {
				drawDot(img, at(s.x[j], s.y[j]), col, 3)
			}
		}
		p := legendAt(i)
		drawLine(img, p, point{p.x + 26, p.y}, col, 3)
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func hexColor(s string) color.RGBA {
	v, _ := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// drawLine plots a line of width w by stepping half a pixel at a time.
func drawLine(img *image.RGBA, a, b point, c color.RGBA, w int) {
	n := int(math.Max(math.Abs(b.x-a.x), math.Abs(b.y-a.y))*2) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := int(a.x+(b.x-a.x)*t), int(a.y+(b.y-a.y)*t)
		for dx := range w {
			for dy := range w {
				img.SetRGBA(x+dx, y+dy, c)
			}
		}
	}
}

// drawDot plots a filled circle of radius r.
func drawDot(img *image.RGBA, p point, c color.RGBA, r int) {
	for dx := -r; dx <= r; dx++ {
		for dy := -r; dy <= r; dy++ {
			if dx*dx+dy*dy <= r*r {
				img.SetRGBA(int(p.x)+dx, int(p.y)+dy, c)
			}
		}
	}
}
