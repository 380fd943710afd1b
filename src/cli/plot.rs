//! The training curve as an SVG: running training loss and per-epoch test accuracy.

use std::path::Path;

use octconv::train::EpochReport;
use plotters::prelude::*;

/// Running training loss at a point of training (epoch + fraction done).
pub struct CurvePoint {
    pub epoch: f64,
    pub loss: f64,
}

/// The curve as an SVG at `path`, written atomically.
pub fn training_curve(path: &Path, curve: &[CurvePoint], reports: &[EpochReport]) -> Result<(), String> {
    let mut svg = String::new();
    draw_training_curve(&mut svg, path, curve, reports)?;
    octconv::files::write_atomically(path, svg.as_bytes()).map_err(|e| e.to_string())
}

fn draw_training_curve(
    svg: &mut String,
    path: &Path,
    curve: &[CurvePoint],
    reports: &[EpochReport],
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!("{}: cannot draw the training curve: {e}; check that its folder can be written", path.display())
    };
    let root = SVGBackend::with_string(svg, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(450);
    let x_end = curve.last().map_or(1.0, |p| p.epoch).max(1.0);
    let x_start = curve.first().map_or(0.0, |p| p.epoch.floor());
    let max_loss = curve.iter().map(|p| p.loss).fold(0.1, f64::max);

    let mut chart = ChartBuilder::on(&left)
        .caption("running training loss", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(x_start..x_end, 0.0..max_loss * 1.05)
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc("epoch").draw().map_err(|e| fail(&e))?;
    chart.draw_series(LineSeries::new(curve.iter().map(|p| (p.epoch, p.loss)), &BLUE)).map_err(|e| fail(&e))?;

    let low = reports.iter().map(|r| r.test_accuracy.min(r.train_accuracy)).fold(1.0, f64::min);
    let mut chart = ChartBuilder::on(&right)
        .caption("accuracy per epoch", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(x_start..x_end, (low - 0.01).max(0.0)..1.0)
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc("epoch").draw().map_err(|e| fail(&e))?;
    let points = |f: fn(&EpochReport) -> f64| reports.iter().map(move |r| (r.epoch as f64, f(r))).collect::<Vec<_>>();
    for (values, color, label) in
        [(points(|r| r.test_accuracy), RED, "test"), (points(|r| r.train_accuracy), BLUE, "train")]
    {
        chart
            .draw_series(LineSeries::new(values.clone(), color).point_size(4))
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// Which value of a study point a panel's x axis shows.
type XOf = fn(&StudyPoint) -> f64;

/// One alpha of an octave study: test accuracy (mean ± sd), step time, forward cost.
pub struct StudyPoint {
    pub alpha: f64,
    pub mean: f64,
    pub sd: f64,
    pub step_ms: f64,
    pub mmacs: f64,
}

/// Two panels, accuracy against the measured step time and against the
/// forward MACs, one point per alpha with ±sd error bars; written atomically.
pub fn study_panels(path: &Path, points: &[StudyPoint], title: &str) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!("{}: cannot draw the study: {e}; check that its folder can be written", path.display())
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let root = root.titled(title, ("sans-serif", 18)).map_err(|e| fail(&e))?;
        let (left, right) = root.split_horizontally(500);
        let low = points.iter().map(|p| (p.mean - p.sd) * 100.0).fold(100.0, f64::min);
        let high = points.iter().map(|p| (p.mean + p.sd) * 100.0).fold(0.0, f64::max);
        let margin = ((high - low) * 0.15).max(0.05);
        let accuracy_range = (low - margin)..(high + margin);
        let panels: [(_, &str, XOf); 2] = [
            (&left, "training step (ms, measured)", |p| p.step_ms),
            (&right, "forward MACs per image (millions)", |p| p.mmacs),
        ];
        for (area, x_desc, x_of) in panels {
            let x_max = points.iter().map(x_of).fold(0.0, f64::max) * 1.12;
            let mut chart = ChartBuilder::on(area)
                .margin(14)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_max, accuracy_range.clone())
                .map_err(|e| fail(&e))?;
            chart.configure_mesh().x_desc(x_desc).y_desc("test accuracy (%)").draw().map_err(|e| fail(&e))?;
            let bars = points.iter().map(|p| {
                let (x, y, sd) = (x_of(p), p.mean * 100.0, p.sd * 100.0);
                ErrorBar::new_vertical(x, y - sd, y, y + sd, BLUE.filled(), 8)
            });
            chart.draw_series(bars).map_err(|e| fail(&e))?;
            let labels = points.iter().map(|p| {
                Text::new(format!("α {}", p.alpha), (x_of(p), p.mean * 100.0), ("sans-serif", 13).into_font())
            });
            chart.draw_series(labels).map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    octconv::files::write_atomically(path, svg.as_bytes()).map_err(|e| e.to_string())
}
