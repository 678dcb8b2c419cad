//! The chart module against its outputs: files written, texts present, and every drawn
//! polyline tied back to its series' data through the SVG's pixel coordinates.
//! (The `SEGEXPAND_FONT` error case lives in `plot_font_env.rs`: it sets the environment.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_bench::plot::{
    render, svg_polylines, svg_texts, Chart, PlotError, Series, SeriesStyle, Shade,
};
use std::path::Path;

fn timeline(label: &str, n: usize, f: impl Fn(f64) -> f64, style: SeriesStyle) -> Series {
    Series {
        label: label.into(),
        points: (0..n)
            .map(|i| {
                let t = i as f64;
                (t, f(t))
            })
            .collect(),
        style,
    }
}

/// With `SEGEXPAND_PLOT_KEEP=<dir>`, copies a test's figures there to look at.
fn keep(png: &Path, svg: &Path) {
    if let Some(dir) = std::env::var_os("SEGEXPAND_PLOT_KEEP") {
        for file in [png, svg] {
            std::fs::copy(file, Path::new(&dir).join(file.file_name().unwrap())).unwrap();
        }
    }
}

/// Pixel x strictly increasing, and pixel y ordered opposite to data y (up is larger):
/// for every pair of points, data y1 > y2 ⇔ pixel y1 < pixel y2 (ties allowed when equal).
fn assert_ties_out(data: &[(f64, f64)], pixels: &[(f64, f64)]) {
    assert_eq!(data.len(), pixels.len());
    for w in pixels.windows(2) {
        assert!(w[1].0 > w[0].0, "pixel x not increasing: {w:?}");
    }
    for (i, (d1, p1)) in data.iter().zip(pixels).enumerate() {
        for (d2, p2) in data.iter().zip(pixels).skip(i + 1) {
            if d1.1 > d2.1 {
                assert!(
                    p1.1 <= p2.1,
                    "data y {} > {} but pixel y {} > {}",
                    d1.1,
                    d2.1,
                    p1.1,
                    p2.1
                );
            } else if d1.1 < d2.1 {
                assert!(
                    p1.1 >= p2.1,
                    "data y {} < {} but pixel y {} < {}",
                    d1.1,
                    d2.1,
                    p1.1,
                    p2.1
                );
            } else {
                assert_eq!(p1.1, p2.1);
            }
        }
    }
    // And the extremes really are apart: the drawing is not flat.
    let top = pixels.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let bottom = pixels.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    assert!(
        bottom - top > 100.0,
        "series drawn only {} px tall",
        bottom - top
    );
}

#[test]
fn two_series_and_a_shade_render_and_tie_out() {
    let dir = tempfile::tempdir().unwrap();
    let chart = Chart {
        title: "Throughput during expansion".into(),
        x_label: "time (s)".into(),
        y_label: "throughput (tx/s)".into(),
        series: vec![
            timeline(
                "YCSB-A",
                61,
                |t| {
                    9000.0
                        - if (20.0..40.0).contains(&t) {
                            2500.0 + 30.0 * t
                        } else {
                            0.0
                        }
                        + 150.0 * (t * 0.7).sin()
                },
                SeriesStyle::Line,
            ),
            timeline("ideal", 61, |t| 6000.0 + 50.0 * t, SeriesStyle::Dashed),
        ],
        shades: vec![Shade {
            from: 20.0,
            to: 40.0,
            label: "migration".into(),
            color_index: 0,
        }],
        log_y: false,
        y_from_zero: true,
    };
    let (png, svg) = render(&chart, &dir.path().join("throughput")).unwrap();
    assert_eq!(png, dir.path().join("throughput.png"));
    assert_eq!(svg, dir.path().join("throughput.svg"));

    let png_bytes = std::fs::read(&png).unwrap();
    assert!(png_bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(
        png_bytes.len() > 5 * 1024,
        "PNG only {} bytes",
        png_bytes.len()
    );
    keep(&png, &svg);

    let text = std::fs::read_to_string(&svg).unwrap();
    let texts = svg_texts(&text);
    for want in [
        "Throughput during expansion",
        "time (s)",
        "throughput (tx/s)",
        "YCSB-A",
        "ideal",
        "migration",
    ] {
        assert!(
            texts.iter().any(|t| t == want),
            "{want:?} not among {texts:?}"
        );
    }

    let lines = svg_polylines(&text);
    assert_eq!(lines.len(), 2, "one polyline per series: {lines:?}");
    for (series, pixels) in chart.series.iter().zip(&lines) {
        assert_ties_out(&series.points, pixels);
    }
    // The dashed series (and only it) is dashed in the SVG.
    assert_eq!(text.matches("stroke-dasharray").count(), 1);
    let dashed = text.find("stroke-dasharray").unwrap();
    let polylines: Vec<usize> = text.match_indices("<polyline").map(|(i, _)| i).collect();
    assert!(dashed > polylines[1] && polylines[0] < polylines[1]);
    // The shade is drawn before the series.
    let shade = text
        .find(r#"opacity="0.18""#)
        .expect("translucent shade rectangle");
    assert!(shade < polylines[0]);
}

#[test]
fn log_y_drops_non_positive_points() {
    let dir = tempfile::tempdir().unwrap();
    let points = vec![
        (0.0, 120.0),
        (1.0, 0.0),
        (2.0, 900.0),
        (3.0, 45_000.0),
        (4.0, 300.0),
        (5.0, -3.0),
    ];
    let chart = Chart {
        title: "p99 latency".into(),
        x_label: "time (s)".into(),
        y_label: "latency (µs)".into(),
        series: vec![Series {
            label: "p99".into(),
            points: points.clone(),
            style: SeriesStyle::LinePoints,
        }],
        log_y: true,
        ..Chart::default()
    };
    let (png, svg) = render(&chart, &dir.path().join("latency")).unwrap();
    keep(&png, &svg);
    let text = std::fs::read_to_string(&svg).unwrap();
    let lines = svg_polylines(&text);
    assert_eq!(lines.len(), 1);
    let kept: Vec<(f64, f64)> = points.into_iter().filter(|p| p.1 > 0.0).collect();
    assert_eq!(kept.len(), 4);
    assert_ties_out(&kept, &lines[0]);
    // Log scale: equal ratios are equal pixel distances (to rounding), 120→900 vs 900→45000
    // is log(7.5) : log(50), not 780 : 44100.
    let gap = |a: usize, b: usize| lines[0][a].1 - lines[0][b].1;
    let ratio = gap(1, 2) / gap(0, 1);
    let want = 50f64.ln() / 7.5f64.ln();
    assert!(
        (ratio - want).abs() < 0.05,
        "pixel ratio {ratio}, log ratio {want}"
    );
    // LinePoints: a dot per kept point (plus the legend's).
    assert_eq!(text.matches("<circle").count(), 4 + 1);
    assert!(svg_texts(&text).iter().any(|t| t == "latency (µs)"));
}

#[test]
fn empty_charts_are_errors_naming_the_title() {
    let dir = tempfile::tempdir().unwrap();
    let none = Chart {
        title: "nothing".into(),
        ..Chart::default()
    };
    match render(&none, &dir.path().join("none")) {
        Err(PlotError::Empty(title)) => assert_eq!(title, "nothing"),
        other => panic!("expected Empty, got {other:?}"),
    }
    let hollow = Chart {
        title: "hollow".into(),
        series: vec![
            Series::default(),
            Series {
                label: "nan".into(),
                points: vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)],
                style: SeriesStyle::Line,
            },
        ],
        ..Chart::default()
    };
    let err = render(&hollow, &dir.path().join("hollow")).unwrap_err();
    assert!(matches!(err, PlotError::Empty(_)));
    assert!(err.to_string().contains("hollow"), "{err}");
    assert!(!dir.path().join("hollow.png").exists());
}

#[test]
fn constant_series_and_single_points_draw() {
    let dir = tempfile::tempdir().unwrap();
    let chart = Chart {
        title: "flat".into(),
        x_label: "x".into(),
        y_label: "y".into(),
        series: vec![
            timeline("constant", 10, |_| 5.0, SeriesStyle::Line),
            Series {
                label: "one".into(),
                points: vec![(3.0, 5.0), (f64::NAN, 2.0)],
                style: SeriesStyle::Line,
            },
        ],
        ..Chart::default()
    };
    let (png, svg) = render(&chart, &dir.path().join("flat")).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 1024);
    let lines = svg_polylines(&std::fs::read_to_string(&svg).unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 10);
    assert_eq!(lines[1].len(), 1, "the NaN point is dropped");
    // Constant: one pixel row, strictly inside the plot (the zero range was widened).
    assert!(lines[0].iter().all(|p| p.1 == lines[0][0].1));
    assert!(
        lines[0][0].1 > 60.0 && lines[0][0].1 < 480.0,
        "{:?}",
        lines[0][0]
    );
    assert!(lines[0].windows(2).all(|w| w[1].0 > w[0].0));
}
