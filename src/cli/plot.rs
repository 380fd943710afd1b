//! The training curve as an SVG: running training loss and per-epoch test accuracy.

use std::path::Path;

use octconv::train::EpochReport;
use plotters::prelude::*;

/// Running training loss at a point of training (epoch + fraction done).
pub struct CurvePoint {
    pub epoch: f64,
    pub loss: f64,
}

pub fn training_curve(path: &Path, curve: &[CurvePoint], reports: &[EpochReport]) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: cannot draw the training curve: {e}", path.display());
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
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
