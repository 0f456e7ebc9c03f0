//! SVG charts of a report, drawn with plotters: the timeline (throughput and errors per second
//! above, latency percentiles per second below) and the latency histogram.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::LoadError;
use crate::report::Report;
use crate::stats::{Bucket, Second};

const FONT: &str = "sans-serif";

/// A line of a timeline chart: its label, colour and value per second.
type Series = (&'static str, RGBColor, fn(&Second) -> f64);

/// Draws both charts next to the report; returns their paths.
pub fn draw(report: &Report, stem: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let timeline_path = with_suffix(stem, "-timeline.svg");
    let histogram_path = with_suffix(stem, "-latency.svg");
    let title = format!("integr8s load, {} mode", report.mode);
    timeline(&timeline_path, &title, &report.stats.timeline)
        .map_err(|detail| plot_error(&timeline_path, detail))?;
    histogram(&histogram_path, &title, &report.stats.latency_histogram)
        .map_err(|detail| plot_error(&histogram_path, detail))?;
    Ok(vec![timeline_path, histogram_path])
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn plot_error(path: &Path, detail: String) -> LoadError {
    LoadError::Plot {
        path: path.to_owned(),
        detail,
    }
}

fn timeline(path: &Path, title: &str, seconds: &[Second]) -> Result<(), String> {
    let root = SVGBackend::new(path, (1100, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root.titled(title, (FONT, 22)).map_err(|e| e.to_string())?;
    let (upper, lower) = root.split_vertically(360);
    let end = seconds.len().max(1) as f64;

    let top = seconds
        .iter()
        .map(|s| s.requests.max(s.errors))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut chart = ChartBuilder::on(&upper)
        .caption("Throughput per second", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("per second")
        .draw()
        .map_err(|e| e.to_string())?;
    let series: [Series; 2] = [
        ("requests/s", BLUE, |s| s.requests as f64),
        ("errors/s", RED, |s| s.errors as f64),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                seconds.iter().map(|s| (s.second as f64, value(s))),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| e.to_string())?;

    let top = seconds
        .iter()
        .map(|s| s.p99_ms)
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&lower)
        .caption("Latency percentiles per second", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("ms")
        .draw()
        .map_err(|e| e.to_string())?;
    let series: [Series; 3] = [
        ("p50", GREEN, |s| s.p50_ms),
        ("p90", RGBColor(230, 140, 0), |s| s.p90_ms),
        ("p99", RED, |s| s.p99_ms),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                seconds
                    .iter()
                    .filter(|s| s.requests > 0)
                    .map(|s| (s.second as f64, value(s))),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn histogram(path: &Path, title: &str, buckets: &[Bucket]) -> Result<(), String> {
    let root = SVGBackend::new(path, (1100, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    // Buckets double in width: a logarithmic axis shows them at equal widths.
    let low = buckets.first().map_or(0.05, |b| b.le_ms / 2.0).max(0.001);
    let high = buckets.last().map_or(1.0, |b| b.le_ms).max(low * 2.0);
    let top = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: latency histogram"), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((low..high).log_scale(), 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, logarithmic)")
        .y_desc("requests")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(buckets.iter().map(|b| {
            Rectangle::new(
                [(b.le_ms / 2.0, 0.0), (b.le_ms, b.count as f64)],
                BLUE.mix(0.6).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
