//! Charts as SVG strings (plotters' SVG backend: no fonts or files needed).
use std::collections::BTreeMap;

use plotters::prelude::*;

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Line series on the session's shared time axis (0..`x_max` seconds), with
/// alert markers (red verticals) at the same times on every chart.
fn lines(
    caption: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_max: f64,
    alerts: &[f64],
) -> String {
    let mut s = String::new();
    let x_max = x_max.max(1e-3);
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold(1.0f64, f64::max)
        * 1.1;
    {
        let root = SVGBackend::with_string(&mut s, (900, 260)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let built = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max);
        if let Ok(mut chart) = built {
            let _ = chart
                .configure_mesh()
                .x_desc("seconds since the session started")
                .y_desc(y_desc)
                .draw();
            for (i, (g, pts)) in series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                if let Ok(a) =
                    chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                {
                    a.label(g.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
            }
            for at in alerts {
                let _ = chart.draw_series(std::iter::once(PathElement::new(
                    vec![(*at, 0.0), (*at, y_max)],
                    RED.stroke_width(2),
                )));
            }
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw();
        }
        let _ = root.present();
    }
    s
}

/// Lines of per-second counts, one per group, with alert markers.
#[must_use]
pub fn timeline(series: &BTreeMap<String, Vec<(f64, u64)>>, x_max: f64, alerts: &[f64]) -> String {
    let v: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(g, pts)| {
            (
                g.clone(),
                pts.iter().map(|(x, y)| (*x, *y as f64)).collect(),
            )
        })
        .collect();
    lines("syscalls per second by group", "calls/s", &v, x_max, alerts)
}

/// Heap above its start and mapped bytes over time.
#[must_use]
pub fn memory(points: &[(f64, u64, u64)], x_max: f64, alerts: &[f64]) -> String {
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let v = vec![
        (
            "mapped (mmap - munmap)".to_owned(),
            points.iter().map(|p| (p.0, mib(p.2))).collect(),
        ),
        (
            "heap (brk above start)".to_owned(),
            points.iter().map(|p| (p.0, mib(p.1))).collect(),
        ),
    ];
    lines("memory", "MiB", &v, x_max, alerts)
}

/// Bytes read and written per interval (file and socket I/O).
#[must_use]
pub fn io(points: &[(f64, u64, u64)], x_max: f64, alerts: &[f64]) -> String {
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let v = vec![
        (
            "read".to_owned(),
            points.iter().map(|p| (p.0, mib(p.1))).collect(),
        ),
        (
            "written".to_owned(),
            points.iter().map(|p| (p.0, mib(p.2))).collect(),
        ),
    ];
    lines("I/O per 100 ms", "MiB", &v, x_max, alerts)
}

/// Horizontal bars: bytes read and written per file (labels are drawn by the
/// HTML table next to it, so no traced string ever enters the SVG).
#[must_use]
pub fn file_bars(values: &[(u64, u64)]) -> String {
    let mut s = String::new();
    let n = values.len().max(1);
    let x_max = values.iter().map(|(r, w)| r + w).max().unwrap_or(1).max(1) as f64 / 1024.0 * 1.05;
    {
        let root = SVGBackend::with_string(&mut s, (600, (40 + 22 * n) as u32)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let built = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(25)
            .y_label_area_size(30)
            .build_cartesian_2d(0f64..x_max, 0f64..n as f64);
        if let Ok(mut chart) = built {
            let _ = chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc("KiB")
                .y_labels(0)
                .draw();
            for (i, (r, w)) in values.iter().enumerate() {
                let y = (n - 1 - i) as f64;
                let (rk, wk) = (*r as f64 / 1024.0, *w as f64 / 1024.0);
                let _ = chart.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.15), (rk, y + 0.85)],
                    PALETTE[0].filled(),
                )));
                let _ = chart.draw_series(std::iter::once(Rectangle::new(
                    [(rk, y + 0.15), (rk + wk, y + 0.85)],
                    PALETTE[1].filled(),
                )));
            }
        }
        let _ = root.present();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg() {
        let mut m = BTreeMap::new();
        m.insert("file".to_owned(), vec![(0.0, 10), (1.0, 20)]);
        let t = timeline(&m, 1.0, &[0.5]);
        assert!(
            t.starts_with("<svg") && t.contains("polyline"),
            "{}",
            &t[..100]
        );
        assert!(memory(&[(0.0, 0, 4096), (1.0, 8192, 8192)], 1.0, &[]).starts_with("<svg"));
        assert!(io(&[(0.0, 10, 0), (0.1, 0, 20)], 1.0, &[0.5]).contains("polyline"));
        assert!(file_bars(&[(1024, 0), (0, 2048)]).contains("<rect"));
        // Empty data still renders.
        assert!(timeline(&BTreeMap::new(), 0.0, &[]).starts_with("<svg"));
        assert!(memory(&[], 0.0, &[]).starts_with("<svg"));
    }
}
