//! Line charts for the research harness (issue 13): throughput and latency timelines of
//! an online data migration, drawn with `plotters` to a PNG (1000x560, for reading) and an
//! SVG (for papers, and for tests that tie a drawing back to its data).
//!
//! What a chart is: [`Series`] (lines, points, or a dashed reference line) over [`Shade`]s
//! (translucent x-ranges, e.g. the migration window), with a title, axis labels, a light
//! grid, a legend in the emptiest corner, and optionally a log-scale y axis.
//!
//! Text is drawn by `ab_glyph` from a TrueType font loaded at run time, once per process,
//! from `SEGEXPAND_FONT` or a few common system paths ([`FONT_PATHS`]); no font ships with
//! the crate, and without one [`render`] fails with [`PlotError::NoFont`].
//!
//! **Invariant (SVG):** the series are the only polylines this module draws. Axis lines and
//! tick marks are drawn transparent (the SVG backend then writes nothing for them), the frame
//! is a `<rect>`, shades are `<rect>`s, and legend samples are `<rect>`s and `<circle>`s. So
//! [`svg_polylines`] returns exactly one polyline per non-empty Line/LinePoints/Dashed
//! series, in series order.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line (or point set) of a chart.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Its legend entry; empty leaves it out of the legend.
    pub label: String,
    /// Data points, drawn in this order (a line joins them in this order).
    pub points: Vec<(f64, f64)>,
    pub style: SeriesStyle,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeriesStyle {
    /// A solid line.
    #[default]
    Line,
    /// Filled dots, no line.
    Points,
    /// A solid line with a dot at every point.
    LinePoints,
    /// A dashed line, e.g. an "ideal" reference.
    Dashed,
}

/// A shaded x-range (the migration window), spanning the full y range, labelled in the legend.
#[derive(Clone, Debug, Default)]
pub struct Shade {
    pub from: f64,
    pub to: f64,
    /// Its legend entry; empty leaves it out of the legend.
    pub label: String,
    /// Index into the shade palette (wraps around).
    pub color_index: usize,
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub shades: Vec<Shade>,
    /// Log-scale y (latency); points with y <= 0 are skipped on log charts.
    pub log_y: bool,
    /// Linear charts: the y axis starts at 0 (or below, if data are negative).
    pub y_from_zero: bool,
}

/// Why a chart could not be drawn.
#[derive(Debug)]
#[non_exhaustive]
pub enum PlotError {
    /// No usable font (the message says where it looked and what to do).
    NoFont(String),
    /// Nothing to draw; names the chart's title.
    Empty(String),
    /// plotters failed to draw or to write the PNG.
    Draw(String),
    /// Writing the SVG failed.
    Io(std::io::Error),
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlotError::NoFont(msg) => write!(f, "no font for charts: {msg}"),
            PlotError::Empty(title) => write!(f, "chart {title:?} has no finite points to draw"),
            PlotError::Draw(msg) => write!(f, "drawing the chart failed: {msg}"),
            PlotError::Io(e) => write!(f, "writing the chart failed: {e}"),
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for PlotError {
    fn from(e: std::io::Error) -> Self {
        PlotError::Io(e)
    }
}

/// The environment variable naming a TrueType font file; if set, it must be readable.
pub const FONT_ENV: &str = "SEGEXPAND_FONT";

/// System fonts tried, in order, when [`FONT_ENV`] is not set (Debian/Ubuntu, Arch, Fedora).
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/LiberationSans-Regular.ttf",
];

/// PNG size in pixels; the SVG uses the same pixel coordinates.
pub const SIZE_PX: (u32, u32) = (1000, 560);

const FAMILY: &str = "sans-serif";
const INSTALL_HINT: &str = "install fonts-dejavu-core or set SEGEXPAND_FONT to a .ttf file";

/// Series colours (Okabe-Ito, readable by colour-blind readers and in greyscale print).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];
/// Shade colours, drawn at [`SHADE_ALPHA`].
const SHADES: [RGBColor; 4] = [
    RGBColor(128, 128, 128),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
];
const SHADE_ALPHA: f64 = 0.18;
const LINE_PX: u32 = 2;
const DOT_PX: i32 = 3;
/// Dash and gap lengths of Dashed series, in pixels (PNG segments; SVG dasharray).
const DASH_PX: (u32, u32) = (8, 5);

/// The font registered with plotters, once per process (`None` until a load succeeds).
static FONT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Registers the chart font for family "sans-serif" unless already done; returns its path.
/// A failed attempt is not remembered, so a later call (say, after installing fonts) retries.
pub fn ensure_font() -> Result<PathBuf, PlotError> {
    let mut font = FONT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = font.as_ref() {
        return Ok(path.clone());
    }
    let path = match std::env::var_os(FONT_ENV).filter(|v| !v.is_empty()) {
        Some(explicit) => {
            let path = PathBuf::from(explicit);
            register(&path).map_err(|why| {
                PlotError::NoFont(format!(
                    "{FONT_ENV}={} {why}; {INSTALL_HINT}",
                    path.display()
                ))
            })?;
            path
        }
        None => FONT_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|path| register(path).is_ok())
            .ok_or_else(|| {
                PlotError::NoFont(format!(
                    "none of {} is a readable font; {INSTALL_HINT}",
                    FONT_PATHS.join(", ")
                ))
            })?,
    };
    *font = Some(path.clone());
    Ok(path)
}

/// Reads `path` and registers it; the bytes are leaked, as plotters keeps `&'static [u8]`
/// (once per process on success; a file that is not a font leaks once per attempt).
fn register(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| "is not a TrueType/OpenType font".to_string())
}

/// Draws `chart` to `<stem>.png` (1000x560) and `<stem>.svg`; returns both paths.
/// The extensions are appended, so a stem such as `run.v2/fig` keeps its dots.
pub fn render(chart: &Chart, stem: &Path) -> Result<(PathBuf, PathBuf), PlotError> {
    ensure_font()?;
    let plan = Plan::new(chart)?;
    let png = with_suffix(stem, ".png");
    let svg = with_suffix(stem, ".svg");

    {
        let root = BitMapBackend::new(&png, SIZE_PX).into_drawing_area();
        draw(&root, &plan, Dashes::Segments)?;
        root.present().map_err(draw_err)?;
    }

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE_PX).into_drawing_area();
        draw(&root, &plan, Dashes::OnePolyline)?;
        root.present().map_err(draw_err)?;
    }
    std::fs::write(&svg, dash_polylines(&text, &plan.dashed_polylines()))?;
    Ok((png, svg))
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// How a Dashed series is drawn: as plotters' dash segments (PNG), or as one polyline that
/// gets a `stroke-dasharray` afterwards (SVG; keeps one polyline per series).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dashes {
    Segments,
    OnePolyline,
}

/// A chart made ready to draw: its points cleaned, its ranges and legend corner chosen.
struct Plan<'c> {
    chart: &'c Chart,
    /// `chart.series[i]`'s drawable points.
    points: Vec<Vec<(f64, f64)>>,
    x: Range<f64>,
    y: Range<f64>,
    legend: SeriesLabelPosition,
}

impl<'c> Plan<'c> {
    fn new(chart: &'c Chart) -> Result<Self, PlotError> {
        let points: Vec<Vec<(f64, f64)>> = chart
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.log_y || *y > 0.0))
                    .collect()
            })
            .collect();
        let all = || points.iter().flatten();
        let (Some(x_data), Some(y_data)) = (bounds(all().map(|p| p.0)), bounds(all().map(|p| p.1)))
        else {
            return Err(PlotError::Empty(chart.title.clone()));
        };
        let shade_xs = chart
            .shades
            .iter()
            .flat_map(|s| [s.from, s.to])
            .filter(|x| x.is_finite());
        let x_all = bounds(shade_xs.chain([x_data.start, x_data.end])).unwrap_or(x_data);
        let x = pad_linear(widen(x_all), 0.02, 0.02);
        let y = if chart.log_y {
            pad_log(y_data)
        } else {
            let mut y = y_data;
            if chart.y_from_zero {
                y = y.start.min(0.0)..y.end.max(0.0);
            }
            let y = widen(y);
            let below = if chart.y_from_zero && y.start == 0.0 {
                0.0
            } else {
                0.05
            };
            pad_linear(y, below, 0.08)
        };
        let mut plan = Plan {
            chart,
            points,
            x,
            y,
            legend: SeriesLabelPosition::UpperRight,
        };
        plan.legend = plan.emptiest_corner();
        Ok(plan)
    }

    /// Indexes, among the SVG's polylines, of the Dashed series.
    fn dashed_polylines(&self) -> Vec<usize> {
        self.chart
            .series
            .iter()
            .zip(&self.points)
            .filter(|(s, pts)| s.style != SeriesStyle::Points && !pts.is_empty())
            .enumerate()
            .filter(|(_, (s, _))| s.style == SeriesStyle::Dashed)
            .map(|(i, _)| i)
            .collect()
    }

    /// The chart corner with the least data under the legend (first of upper right, upper
    /// left, lower right, lower left on ties), judged on points and on samples along lines.
    fn emptiest_corner(&self) -> SeriesLabelPosition {
        const BOX: (f64, f64) = (0.38, 0.32); // legend box, as a fraction of the plot
        let mut counts = [0usize; 4];
        let mut count = |p: (f64, f64)| {
            let (u, v) = self.unit(p);
            let right = u >= 1.0 - BOX.0;
            let left = u <= BOX.0;
            let top = v >= 1.0 - BOX.1;
            let bottom = v <= BOX.1;
            for (slot, hit) in
                counts
                    .iter_mut()
                    .zip([top && right, top && left, bottom && right, bottom && left])
            {
                *slot += usize::from(hit);
            }
        };
        for (series, pts) in self.chart.series.iter().zip(&self.points) {
            pts.iter().for_each(|p| count(*p));
            // Sparse lines cross corners between their points: sample along each segment.
            if series.style != SeriesStyle::Points && pts.len() < 500 {
                for pair in pts.windows(2) {
                    if let [a, b] = pair {
                        for k in 1..8 {
                            let t = f64::from(k) / 8.0;
                            count((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
                        }
                    }
                }
            }
        }
        let corners = [
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::LowerRight,
            SeriesLabelPosition::LowerLeft,
        ];
        corners
            .into_iter()
            .zip(counts)
            .min_by_key(|(_, n)| *n)
            .map_or(SeriesLabelPosition::UpperRight, |(corner, _)| corner)
    }

    /// A data point as a fraction of the plot area (0,0 lower left; log y on log charts).
    fn unit(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let u = (x - self.x.start) / (self.x.end - self.x.start);
        let v = if self.chart.log_y {
            (y.ln() - self.y.start.ln()) / (self.y.end.ln() - self.y.start.ln())
        } else {
            (y - self.y.start) / (self.y.end - self.y.start)
        };
        (u, v)
    }
}

/// Smallest and largest of `values`, or `None` if there are none.
fn bounds(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    values.fold(None, |acc, v| match acc {
        None => Some(v..v),
        Some(r) => Some(r.start.min(v)..r.end.max(v)),
    })
}

/// A zero-width range (one point, a constant series) made drawable around its value.
fn widen(r: Range<f64>) -> Range<f64> {
    if r.end > r.start {
        return r;
    }
    let half = (r.start.abs() * 0.1).max(1.0);
    if r.start == 0.0 {
        0.0..1.0
    } else {
        r.start - half..r.end + half
    }
}

fn pad_linear(r: Range<f64>, below: f64, above: f64) -> Range<f64> {
    let span = r.end - r.start;
    r.start - span * below..r.end + span * above
}

/// Log-axis headroom: 5% of the range's decades below, 12% above; a constant becomes x0.5..x2.
fn pad_log(r: Range<f64>) -> Range<f64> {
    if r.end <= r.start {
        return r.start / 2.0..r.end * 2.0;
    }
    let decades = (r.end / r.start).log10();
    r.start / 10f64.powf(decades * 0.05)..r.end * 10f64.powf(decades * 0.12)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plan: &Plan<'_>,
    dashes: Dashes,
) -> Result<(), PlotError> {
    if plan.chart.log_y {
        draw_on(root, plan, plan.y.clone().log_scale(), dashes)
    } else {
        draw_on(root, plan, plan.y.clone(), dashes)
    }
}

/// Draws in this order: background, grid and tick labels, shades, series, frame, legend.
fn draw_on<DB, Y>(
    root: &DrawingArea<DB, Shift>,
    plan: &Plan<'_>,
    y_spec: Y,
    dashes: Dashes,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let chart = plan.chart;
    root.fill(&WHITE).map_err(draw_err)?;
    let mut cc = ChartBuilder::on(root)
        .caption(&chart.title, (FAMILY, 24))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(plan.x.clone(), y_spec)
        .map_err(draw_err)?;

    let label = |v: &f64| tick_label(*v);
    cc.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style((FAMILY, 18))
        .label_style((FAMILY, 14))
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(4)
        // Transparent axis lines and ticks: the SVG backend skips them (the module
        // invariant: series are the only polylines); the frame below replaces them.
        .axis_style(TRANSPARENT)
        .draw()
        .map_err(draw_err)?;

    draw_shades(&mut cc, plan)?;
    draw_lines(&mut cc, plan, dashes)?;

    let (xs, ys) = cc.plotting_area().get_pixel_range();
    root.draw(&Rectangle::new(
        [(xs.start, ys.start), (xs.end - 1, ys.end - 1)],
        RGBColor(90, 90, 90).stroke_width(1),
    ))
    .map_err(draw_err)?;

    let labelled = chart.shades.iter().any(|s| !s.label.is_empty())
        || chart.series.iter().any(|s| !s.label.is_empty());
    if labelled {
        cc.configure_series_labels()
            .position(plan.legend.clone())
            .margin(12)
            .legend_area_size(32)
            .background_style(WHITE.filled())
            .border_style(RGBColor(170, 170, 170))
            .label_font((FAMILY, 15))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The chart being drawn on: linear x, and a linear or log y of f64.
type Ctx<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

/// The shades, translucent, each spanning the whole y range, with their legend entries.
fn draw_shades<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    cc: &mut Ctx<'a, DB, Y>,
    plan: &Plan<'_>,
) -> Result<(), PlotError> {
    for shade in &plan.chart.shades {
        if !(shade.from.is_finite() && shade.to.is_finite()) {
            continue;
        }
        let color = SHADES
            .get(shade.color_index % SHADES.len())
            .copied()
            .unwrap_or(RGBColor(128, 128, 128))
            .mix(SHADE_ALPHA);
        let rect = Rectangle::new(
            [(shade.from, plan.y.start), (shade.to, plan.y.end)],
            color.filled(),
        );
        let anno = cc.draw_series(std::iter::once(rect)).map_err(draw_err)?;
        if !shade.label.is_empty() {
            anno.label(&shade.label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 7), (x + 24, y + 7)], color.filled())
            });
        }
    }
    Ok(())
}

/// The series, in order, with their legend entries: for every non-empty Line, LinePoints and
/// Dashed series exactly one line element (see the module invariant), then its dots.
fn draw_lines<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    cc: &mut Ctx<'a, DB, Y>,
    plan: &Plan<'_>,
    dashes: Dashes,
) -> Result<(), PlotError> {
    for (i, (series, pts)) in plan.chart.series.iter().zip(&plan.points).enumerate() {
        if pts.is_empty() {
            continue;
        }
        let color = PALETTE
            .get(i % PALETTE.len())
            .copied()
            .unwrap_or(RGBColor(0, 0, 0));
        let line = color.stroke_width(LINE_PX);
        let style = series.style;
        if style != SeriesStyle::Points {
            if style == SeriesStyle::Dashed && dashes == Dashes::Segments {
                let (dash, gap) = DASH_PX;
                cc.draw_series(DashedLineSeries::new(pts.iter().copied(), dash, gap, line))
                    .map_err(draw_err)?;
            } else {
                cc.draw_series(LineSeries::new(pts.iter().copied(), line))
                    .map_err(draw_err)?;
            }
        }
        // Dots for point styles, and for a lone point a line cannot show.
        let dots = matches!(style, SeriesStyle::Points | SeriesStyle::LinePoints) || pts.len() == 1;
        let anno = cc
            .draw_series(
                pts.iter()
                    .filter(|_| dots)
                    .map(|p| Circle::new(*p, DOT_PX, color.filled())),
            )
            .map_err(draw_err)?;
        if !series.label.is_empty() {
            anno.label(&series.label).legend(move |(x, y)| {
                let l = LegendSample::new(style, color);
                EmptyElement::at((x, y))
                    + Rectangle::new([(0, -1), (l.bar_px, 1)], l.bar)
                    + Rectangle::new([(10, -1), (15, 1)], l.dashes)
                    + Rectangle::new([(18, -1), (24, 1)], l.dashes)
                    + Circle::new((12, 0), DOT_PX, l.dot)
            });
        }
    }
    Ok(())
}

/// A legend entry's sample, 24 px wide: a bar (the whole width for lines, the first dash
/// for Dashed), two more dashes, and a dot; the parts a style does not show are
/// transparent, which the SVG backend leaves out. Rectangles and a circle, never a polyline.
struct LegendSample {
    bar_px: i32,
    bar: ShapeStyle,
    dashes: ShapeStyle,
    dot: ShapeStyle,
}

impl LegendSample {
    fn new(style: SeriesStyle, color: RGBColor) -> Self {
        let shown = color.filled();
        let hidden = TRANSPARENT.filled();
        let (bar_px, bar, dashes, dot) = match style {
            SeriesStyle::Line => (24, shown, hidden, hidden),
            SeriesStyle::Points => (24, hidden, hidden, shown),
            SeriesStyle::LinePoints => (24, shown, hidden, shown),
            SeriesStyle::Dashed => (7, shown, shown, hidden),
        };
        LegendSample {
            bar_px,
            bar,
            dashes,
            dot,
        }
    }
}

/// A tick label: at most three decimals, no trailing zeros, thousands as k and millions as M.
fn tick_label(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = match scaled.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    let mut s = format!("{scaled:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s + suffix
}

/// Adds a `stroke-dasharray` to the polylines at `indexes` (counted in document order).
fn dash_polylines(svg: &str, indexes: &[usize]) -> String {
    const TAG: &str = "<polyline";
    let dash = format!(r#"{TAG} stroke-dasharray="{} {}""#, DASH_PX.0, DASH_PX.1);
    let mut out = String::with_capacity(svg.len() + 32 * indexes.len());
    for (i, piece) in svg.split(TAG).enumerate() {
        match i {
            0 => {}
            n if indexes.contains(&(n - 1)) => out.push_str(&dash),
            _ => out.push_str(TAG),
        }
        out.push_str(piece);
    }
    out
}

/// The polylines of an SVG this module wrote, in pixel coordinates, in drawing order: one
/// per non-empty Line, LinePoints or Dashed series, in series order (see the module doc).
pub fn svg_polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split_once("/>").map_or(tag, |(t, _)| t);
            let (_, rest) = tag.split_once(r#"points=""#)?;
            let (points, _) = rest.split_once('"')?;
            Some(
                points
                    .split_whitespace()
                    .filter_map(|pair| {
                        let (x, y) = pair.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The text elements of an SVG (title, axis and tick labels, legend), in drawing order.
pub fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|tag| {
            let (_, body) = tag.split_once('>')?;
            let (text, _) = body.split_once("</text>")?;
            Some(unescape(text.trim()))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(120.0), "120");
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(1_500_000.0), "1.5M");
        assert_eq!(tick_label(-0.0001), "0");
    }

    #[test]
    fn dashing_marks_only_the_named_polylines() {
        let svg = r#"<polyline points="1,2 "/><polyline points="3,4 "/><polyline points="5,6 "/>"#;
        let out = dash_polylines(svg, &[1]);
        assert_eq!(out.matches("stroke-dasharray").count(), 1);
        assert_eq!(
            svg_polylines(&out),
            vec![vec![(1.0, 2.0)], vec![(3.0, 4.0)], vec![(5.0, 6.0)]]
        );
        assert!(out.contains(r#"<polyline stroke-dasharray="8 5" points="3,4 "/>"#));
    }

    #[test]
    fn zero_ranges_widen() {
        assert_eq!(widen(5.0..5.0), 4.0..6.0);
        assert_eq!(widen(0.0..0.0), 0.0..1.0);
        assert_eq!(widen(100.0..100.0), 90.0..110.0);
    }
}
