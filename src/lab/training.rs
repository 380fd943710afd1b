//! The seed net trained a few steps with the edited kernels beside the
//! shipped ones: both loss curves, and a verdict.

use std::fmt;

/// The seed net trained the same way with the shipped and with the edited kernels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainComparison {
    /// (steps done, mean loss of the steps since the previous point) for each.
    pub shipped: Vec<(usize, f64)>,
    pub edited: Vec<(usize, f64)>,
}

impl TrainComparison {
    /// A problem with the edited run's curve: a NaN, or a loss well above the
    /// shipped run's at the end; None when it trains like the shipped kernels.
    pub fn problem(&self) -> Option<String> {
        if let Some((step, loss)) = self.edited.iter().find(|(_, l)| !l.is_finite()) {
            return Some(format!("the loss became {loss} by step {step}: the edited kernels do not train"));
        }
        let (Some(&(steps, edited)), Some(&(_, shipped))) = (self.edited.last(), self.shipped.last()) else {
            return Some("no training step ran".into());
        };
        // Rounding differs between kernels, so the curves part a little; a loss
        // half as large again as the shipped run's, past chance level, is a divergence.
        (edited > 1.5 * shipped && edited > 0.3).then(|| {
            format!("after {steps} steps the loss is {edited:.4}, the shipped kernels' {shipped:.4}: training diverges")
        })
    }
}

impl fmt::Display for TrainComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "train {:>6} {:>10} {:>10}", "step", "shipped", "edited")?;
        for (&(step, shipped), &(_, edited)) in self.shipped.iter().zip(&self.edited) {
            write!(f, "\ntrain {step:>6} {shipped:>10.4} {edited:>10.4}")?;
        }
        Ok(())
    }
}
