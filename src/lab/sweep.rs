//! Variants of a kernel file: a comment `// lab: NAME = 8, 16, 32` asks the
//! lab to build the file with the constant `NAME` set to each value in turn,
//! check each variant as the file itself is checked, drop those that fail,
//! and rank the rest by the time of the file's kernels.

use super::{Lab, Report};

/// One `// lab: NAME = v1, v2, …` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepSpec {
    pub constant: String,
    pub values: Vec<String>,
}

/// The sweeps a file asks for, in the order of their lines.
pub fn sweep_specs(text: &str) -> Vec<SweepSpec> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("// lab:"))
        .filter_map(|rest| {
            let (name, values) = rest.split_once('=')?;
            let values: Vec<String> =
                values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
            Some(SweepSpec { constant: name.trim().to_string(), values })
        })
        .filter(|spec| !spec.constant.is_empty() && !spec.values.is_empty())
        .collect()
}

/// `text` with the declaration `const NAME… = …;` set to `value`, or None
/// when the file declares no such constant.
pub fn with_constant(text: &str, name: &str, value: &str) -> Option<String> {
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let declares = line
                .trim_start()
                .strip_prefix("const ")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' ') || rest.starts_with('='));
            match (declares, line.find('='), line.rfind(';')) {
                (true, Some(eq), Some(end)) if eq < end && !found => {
                    found = true;
                    format!("{} {value}{}", &line[..=eq], &line[end..])
                }
                _ => line.to_string(),
            }
        })
        .collect();
    found.then(|| lines.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

/// One value of a swept constant and what the lab found with it.
#[derive(Clone, Debug)]
pub struct Variant {
    pub value: String,
    pub report: Report,
}

impl Variant {
    /// The seconds of the file's kernels at the seed net's shapes with this variant.
    pub fn seconds(&self) -> f64 {
        self.report.times.iter().map(|t| t.edited).sum()
    }
}

/// Every value of one constant, checked and timed.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub file: String,
    pub spec: SweepSpec,
    pub variants: Vec<Variant>,
}

impl Sweep {
    /// The variants that pass every check, fastest first.
    pub fn ranked(&self) -> Vec<&Variant> {
        let mut passing: Vec<&Variant> = self.variants.iter().filter(|v| v.report.failed() == 0).collect();
        passing.sort_by(|a, b| a.seconds().total_cmp(&b.seconds()));
        passing
    }

    /// The variants dropped for failing a check.
    pub fn dropped(&self) -> Vec<&Variant> {
        self.variants.iter().filter(|v| v.report.failed() > 0).collect()
    }
}

impl std::fmt::Display for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sweep of {} in {}, fastest first:", self.spec.constant, self.file)?;
        for (rank, v) in self.ranked().into_iter().enumerate() {
            let clock = v.report.times.first().map_or("", |t| t.clock.name());
            write!(f, "\n  {}. {} = {}: {:.3} ms ({clock})", rank + 1, self.spec.constant, v.value, v.seconds() * 1e3)?;
        }
        for v in self.dropped() {
            let why = match &v.report.compile_error {
                Some(error) => error.message.clone(),
                None => format!("{} checks failed", v.report.failed()),
            };
            write!(f, "\n  dropped {} = {}: {why}", self.spec.constant, v.value)?;
        }
        Ok(())
    }
}

impl Lab {
    /// Every sweep `text` asks for, each variant checked and timed on the
    /// edited device; afterwards the file as written is in use again.
    pub async fn sweep(&mut self, name: &str, text: &str) -> Vec<Sweep> {
        let mut sweeps = Vec::new();
        for spec in sweep_specs(text) {
            let mut variants = Vec::new();
            for value in &spec.values {
                let report = match with_constant(text, &spec.constant, value) {
                    Some(variant) => self.check(name, &variant).await,
                    None => {
                        let mut report = Report { file: name.to_string(), ..Report::default() };
                        report.findings.push(super::Finding {
                            passed: false,
                            text: format!("{name} declares no const {}", spec.constant),
                        });
                        report
                    }
                };
                variants.push(Variant { value: value.clone(), report });
            }
            sweeps.push(Sweep { file: name.to_string(), spec, variants });
        }
        if !sweeps.is_empty() {
            self.use_text(name, text);
        }
        sweeps
    }
}
