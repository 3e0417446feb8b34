//! `loadgen plot`: latency by percentile for several runs in one PNG, x on the HdrHistogram
//! plotter's scale (1/(1-percentile), log: 0 %, 90 %, 99 %, 99.9 % …), y in µs (log).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::report::{ReportError, read_histogram, read_summary};

/// Where the label font comes from (Debian's fonts-dejavu-core).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{0}: no latency.hdr in this run")]
    NoHistogram(PathBuf),
    #[error("cannot load the label font {0} (install fonts-dejavu-core): {1}")]
    Font(String, std::io::Error),
    #[error("drawing failed: {0}")]
    Draw(String),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

pub fn plot(runs: &[PathBuf], out: &Path) -> Result<(), PlotError> {
    let font = std::fs::read(DEFAULT_FONT).map_err(|e| PlotError::Font(DEFAULT_FONT.into(), e))?;
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| PlotError::Draw("font".into()))?;

    let mut series = Vec::new();
    let (mut ymin, mut ymax) = (u64::MAX, 1u64);
    for r in runs {
        let name = read_summary(r)
            .map(|s| s.name)
            .unwrap_or_else(|_| r.display().to_string());
        let hp = if r.is_dir() {
            r.join("latency.hdr")
        } else {
            r.clone()
        };
        if !hp.exists() {
            return Err(PlotError::NoHistogram(r.clone()));
        }
        let h = read_histogram(&hp)?;
        let pts: Vec<(f64, f64)> = h
            .iter_quantiles(5)
            .filter(|v| v.quantile_iterated_to() < 0.999_999)
            .map(|v| {
                let q = v.quantile_iterated_to();
                ymin = ymin.min(v.value_iterated_to().max(1));
                ymax = ymax.max(v.value_iterated_to());
                (1.0 / (1.0 - q), v.value_iterated_to().max(1) as f64)
            })
            .collect();
        series.push((name, pts));
    }
    let root = BitMapBackend::new(out, (1200, 750)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("delivery latency by percentile", ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (1.0f64..1e6).log_scale(),
            ((ymin as f64 * 0.8)..(ymax as f64 * 1.3)).log_scale(),
        )
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 1.0 / x);
            if p < 1.0 {
                "0%".into()
            } else {
                format!("{}%", trim(p))
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(draw_err)?;
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(3)))
            .map_err(draw_err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 25, y)], color.stroke_width(3))
            });
    }
    chart
        // Latency curves rise to the right: the lower right is where they leave room.
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

fn trim(p: f64) -> String {
    let s = format!("{p:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
