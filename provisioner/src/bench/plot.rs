//! The benchmark's picture, as a hand-written SVG (no plotting dependency): end-to-end latency
//! of every row by its commit time (a scatter, thinned to [`MAX_POINTS`], with the median of
//! each second as a line), records sent and rows committed per second, and a histogram of the
//! end-to-end latencies. [`render`] is pure.

use super::report::{per_second, percentile};
use std::fmt::Write as _;

/// Most points the scatter draws (every n-th row beyond that), to keep the file small.
pub const MAX_POINTS: usize = 4000;
/// Bars of the histogram.
const BINS: usize = 40;
const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 250.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 60.0;
const GAP: f64 = 70.0;

/// What to draw.
#[derive(Debug, Clone)]
pub struct PlotInput<'a> {
    pub title: String,
    /// A second line under the title (the figures).
    pub subtitle: String,
    /// Unix milliseconds of time 0 on the time axes (the first request).
    pub origin_ms: i64,
    /// `(committed_at_ms, latency_ms)` of every row.
    pub rows: &'a [(i64, i64)],
    /// Unix milliseconds at which each record was sent (one entry per record).
    pub sent_ms: &'a [i64],
}

/// Steps of 1, 2 or 5 times a power of ten, giving about `target` ticks over `[min, max]`.
pub fn ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    let span = max - min;
    if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || !span.is_finite() {
        return vec![min];
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (min / step).ceil() as i64;
    let last = (max / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A linear map from data to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    min: f64,
    max: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn new(min: f64, max: f64, from: f64, to: f64) -> Self {
        let max = if max > min { max } else { min + 1.0 };
        Self { min, max, from, to }
    }
    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.min) / (self.max - self.min) * (self.to - self.from)
    }
}

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Axes, grid, tick labels and titles of one panel whose plot area starts at `top`.
fn frame(svg: &mut String, top: f64, x: Scale, y: Scale, title: &str, x_name: &str, y_name: &str) {
    let bottom = top + PANEL_HEIGHT;
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="{:.1}" class="title">{}</text>"#, top - 10.0, escape(title));
    for t in ticks(y.min, y.max, 5) {
        let py = y.at(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            label(t)
        );
    }
    for t in ticks(x.min, x.max, 10) {
        let px = x.at(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{px:.1}" x2="{px:.1}" y1="{bottom:.1}" y2="{:.1}" class="axis"/><text x="{px:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            bottom + 5.0,
            bottom + 18.0,
            label(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_HEIGHT}" class="frame"/>"#,
        WIDTH - LEFT - RIGHT
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="name" text-anchor="middle">{}</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        bottom + 36.0,
        escape(x_name)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" class="name" text-anchor="middle">{}</text>"#,
        top + PANEL_HEIGHT / 2.0,
        escape(y_name)
    );
}

fn polyline(svg: &mut String, points: impl Iterator<Item = (f64, f64)>, class: &str) {
    let path: Vec<String> = points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    if !path.is_empty() {
        let _ = writeln!(svg, r#"<polyline points="{}" class="{class}"/>"#, path.join(" "));
    }
}

/// The SVG document.
pub fn render(input: &PlotInput) -> String {
    let height = TOP + 30.0 + 3.0 * PANEL_HEIGHT + 2.0 * GAP + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    svg.push_str(
        "<style>.title{font-size:14px;font-weight:bold}.tick{font-size:11px;fill:#444}.name{font-size:12px}\
         .grid{stroke:#e4e4e4}.axis{stroke:#888}.frame{fill:none;stroke:#888}.dot{fill:#1f77b4;fill-opacity:0.35}\
         .median{fill:none;stroke:#d62728;stroke-width:1.5}.sent{fill:none;stroke:#7f7f7f;stroke-width:1.5}\
         .committed{fill:none;stroke:#2ca02c;stroke-width:1.5}.bar{fill:#1f77b4}.legend{font-size:12px}</style>\n",
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="20" class="title">{}</text>"#, escape(&input.title));
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="38" class="name">{}</text>"#, escape(&input.subtitle));

    let seconds = |ms: i64| (ms - input.origin_ms) as f64 / 1000.0;
    let last_s = input
        .rows
        .iter()
        .map(|r| seconds(r.0))
        .chain(input.sent_ms.iter().map(|t| seconds(*t)))
        .fold(1.0f64, f64::max)
        .ceil();
    let max_latency = input.rows.iter().map(|r| r.1 as f64).fold(0.0f64, f64::max);

    // 1. End-to-end latency by commit time.
    let top = TOP + 30.0;
    let x = Scale::new(0.0, last_s, LEFT, WIDTH - RIGHT);
    let y = Scale::new(0.0, (max_latency * 1.05).max(1.0), top + PANEL_HEIGHT, top);
    frame(
        &mut svg,
        top,
        x,
        y,
        "End-to-end latency of each record, by commit time",
        "seconds since the first request",
        "ms",
    );
    let stride = input.rows.len().div_ceil(MAX_POINTS).max(1);
    let radius = if input.rows.len() < 1000 { 2.5 } else { 1.6 };
    for (committed, latency) in input.rows.iter().step_by(stride) {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{radius}" class="dot"/>"#,
            x.at(seconds(*committed)),
            y.at(*latency as f64)
        );
    }
    let mut by_second: Vec<Vec<f64>> = Vec::new();
    for (committed, latency) in input.rows {
        let s = seconds(*committed).max(0.0) as usize;
        if by_second.len() <= s {
            by_second.resize(s + 1, Vec::new());
        }
        by_second[s].push(*latency as f64);
    }
    let medians = by_second.iter_mut().enumerate().filter(|(_, v)| !v.is_empty()).map(|(s, v)| {
        v.sort_by(f64::total_cmp);
        (x.at(s as f64 + 0.5), y.at(percentile(v, 50.0).unwrap_or(0.0)))
    });
    polyline(&mut svg, medians, "median");
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" class="legend"><tspan fill="#1f77b4">● rows{}</tspan><tspan fill="#d62728" dx="16">— median per second</tspan></text>"##,
        LEFT + 8.0,
        top + 16.0,
        if stride > 1 { format!(" (1 in {stride})") } else { String::new() }
    );

    // 2. Throughput.
    let top = top + PANEL_HEIGHT + GAP;
    let sent = per_second(input.sent_ms, input.origin_ms);
    let committed_ms: Vec<i64> = input.rows.iter().map(|r| r.0).collect();
    let committed = per_second(&committed_ms, input.origin_ms);
    let peak = sent.iter().chain(committed.iter()).copied().max().unwrap_or(0) as f64;
    let y = Scale::new(0.0, (peak * 1.1).max(1.0), top + PANEL_HEIGHT, top);
    frame(
        &mut svg,
        top,
        x,
        y,
        "Records sent and rows committed per second",
        "seconds since the first request",
        "per second",
    );
    // Steps: each count holds for its whole second.
    let steps = |counts: &[u64]| -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(s, n)| [(x.at(s as f64), y.at(*n as f64)), (x.at(s as f64 + 1.0), y.at(*n as f64))])
            .collect()
    };
    polyline(&mut svg, steps(&sent).into_iter(), "sent");
    polyline(&mut svg, steps(&committed).into_iter(), "committed");
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" class="legend"><tspan fill="#7f7f7f">— records sent</tspan><tspan fill="#2ca02c" dx="16">— rows committed</tspan></text>"##,
        LEFT + 8.0,
        top + 16.0
    );

    // 3. Histogram.
    let top = top + PANEL_HEIGHT + GAP;
    let bin_width = (max_latency / BINS as f64).max(1.0);
    let mut bins = vec![0u64; BINS];
    for (_, latency) in input.rows {
        let i = ((*latency as f64 / bin_width) as usize).min(BINS - 1);
        bins[i] += 1;
    }
    let x = Scale::new(0.0, bin_width * BINS as f64, LEFT, WIDTH - RIGHT);
    let y = Scale::new(0.0, (bins.iter().copied().max().unwrap_or(0) as f64 * 1.1).max(1.0), top + PANEL_HEIGHT, top);
    frame(&mut svg, top, x, y, "Histogram of end-to-end latency", "ms", "rows");
    for (i, n) in bins.iter().enumerate().filter(|(_, n)| **n > 0) {
        let (x0, x1) = (x.at(i as f64 * bin_width), x.at((i + 1) as f64 * bin_width));
        let y0 = y.at(*n as f64);
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" class="bar"><title>{}-{} ms: {n}</title></rect>"#,
            x0 + 0.5,
            (x1 - x0 - 1.0).max(0.5),
            top + PANEL_HEIGHT - y0,
            label(i as f64 * bin_width),
            label((i + 1) as f64 * bin_width)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 73.0, 10), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]);
        assert_eq!(ticks(0.0, 1250.0, 5), vec![0.0, 500.0, 1000.0]);
        assert_eq!(ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn renders_every_panel_and_escapes_the_title() {
        let rows: Vec<(i64, i64)> = (0..100).map(|i| (1_000 + i * 50, i)).collect();
        let sent: Vec<i64> = (0..100).map(|i| 1_000 + i * 40).collect();
        let svg = render(&PlotInput {
            title: "run <a&b>".into(),
            subtitle: "s".into(),
            origin_ms: 1_000,
            rows: &rows,
            sent_ms: &sent,
        });
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("run &lt;a&amp;b&gt;"));
        assert_eq!(svg.matches("<circle").count(), 100);
        assert_eq!(svg.matches("class=\"bar\"").count(), 40);
        assert_eq!(svg.matches("<polyline").count(), 3);
    }

    #[test]
    fn thins_the_scatter_and_survives_no_rows() {
        let rows: Vec<(i64, i64)> = (0..10_000).map(|i| (i, 5)).collect();
        let svg =
            render(&PlotInput { title: "t".into(), subtitle: String::new(), origin_ms: 0, rows: &rows, sent_ms: &[] });
        assert!(svg.matches("<circle").count() <= MAX_POINTS);
        let empty =
            render(&PlotInput { title: "t".into(), subtitle: String::new(), origin_ms: 0, rows: &[], sent_ms: &[] });
        assert!(empty.contains("</svg>"));
        assert_eq!(empty.matches("<circle").count(), 0);
    }
}
