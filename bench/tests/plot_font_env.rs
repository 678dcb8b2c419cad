//! `SEGEXPAND_FONT` set to a missing file is an error naming the path (not a silent fall
//! back to a system font). Its own test binary, with one test, because it sets the
//! process environment and the font is registered once per process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_bench::plot::{render, Chart, PlotError, Series, SeriesStyle, FONT_ENV};

#[test]
fn missing_explicit_font_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-font.ttf");
    // The only test in this binary: no other thread reads the environment meanwhile.
    std::env::set_var(FONT_ENV, &missing);
    let chart = Chart {
        title: "t".into(),
        series: vec![Series {
            label: "s".into(),
            points: vec![(0.0, 1.0), (1.0, 2.0)],
            style: SeriesStyle::Line,
        }],
        ..Chart::default()
    };
    let err = render(&chart, &dir.path().join("fig")).unwrap_err();
    let PlotError::NoFont(msg) = &err else {
        panic!("expected NoFont, got {err:?}");
    };
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(err.to_string().contains("fonts-dejavu-core"), "{err}");
    assert!(!dir.path().join("fig.png").exists());

    // Unset again, the system font is found (this machine has one) and the retry draws.
    std::env::remove_var(FONT_ENV);
    if std::path::Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists() {
        render(&chart, &dir.path().join("fig")).unwrap();
        assert!(dir.path().join("fig.png").exists());
    }
}
