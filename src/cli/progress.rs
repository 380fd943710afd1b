//! Progress over many epochs of many runs: a bar on a terminal, a line per
//! finished run otherwise, with the expected time left either way.

use std::io::IsTerminal;
use std::time::Instant;

/// Epochs done of all pending runs, with the expected time left (a bar on a
/// terminal, a line per run otherwise).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    epochs: u64,
    done: std::cell::Cell<u64>,
}

impl Progress {
    pub fn new(epochs: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(epochs);
            bar.set_style(
                indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} epochs, {eta} left: {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar
        });
        Progress { bar, started: Instant::now(), epochs, done: std::cell::Cell::new(0) }
    }

    /// The expected time left, from the pace of the epochs done so far.
    fn time_left(&self) -> String {
        let done = self.done.get();
        if done == 0 {
            return "unknown".into();
        }
        let seconds = self.started.elapsed().as_secs_f64() / done as f64 * (self.epochs - done) as f64;
        format!("about {:.0} min", seconds / 60.0)
    }

    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn epoch_done(&self) {
        self.done.set(self.done.get() + 1);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// A line that stays (above the bar on a terminal), with the time left.
    pub fn line(&self, text: &str) {
        let text = format!("{text}, {} left", self.time_left());
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
