//! The shader lab through its library API, on the adapter the tests find:
//! compile errors located in the user's file, a wrong forward and a wrong
//! backward kernel caught (the backward one by finite differences too), a
//! correct edit passing, and files that are empty, half-written or deleted.
//! (Timings are reported by the lab, never asserted here.)

mod common;

use octconv::gpu::AdapterChoice;
use octconv::lab::{diagnose, Lab};

const POOL: &str = include_str!("../shaders/pool.wgsl");

fn lab() -> Option<Lab> {
    common::gpu()?;
    let mut lab = pollster::block_on(Lab::open(&AdapterChoice::from_env())).unwrap();
    lab.repeats = 1;
    Some(lab)
}

/// `POOL` with the first `from` after `marker` replaced by `to`.
fn edit(marker: &str, from: &str, to: &str) -> String {
    let at = POOL.find(marker).unwrap_or_else(|| panic!("{marker} not in pool.wgsl"));
    let offset = at + POOL[at..].find(from).unwrap_or_else(|| panic!("{from} not after {marker}"));
    format!("{}{to}{}", &POOL[..offset], &POOL[offset + from.len()..])
}

#[test]
fn a_syntax_error_is_reported_at_its_line_and_column_in_the_users_file() {
    let broken = edit("fn avg_pool2_forward", "flat_index(id, groups)", "flat_index(id groups)");
    let line = broken.lines().position(|l| l.contains("flat_index(id groups)")).unwrap() + 1;
    let error = diagnose("pool.wgsl", &broken, &["avg_pool2_forward"]).expect("a syntax error");
    assert_eq!((error.file.as_str(), error.line, error.column), ("pool.wgsl", line, 31), "{error}");
    assert!(error.excerpt.contains("flat_index(id groups)") && error.excerpt.ends_with('^'), "{error}");

    let Some(mut lab) = lab() else { return };
    let report = pollster::block_on(lab.check("pool.wgsl", &broken));
    assert_eq!((report.passed(), report.failed()), (0, 1), "{report}");
    assert!(report.to_string().contains("the last good version stays in use"));
    assert!(report.to_string().ends_with("0 passed, 1 failed"), "{report}");
}

#[test]
fn an_unknown_name_is_a_located_validation_error() {
    let broken = edit("fn max_pool2_forward", "flat_index(id, groups)", "flat_index(id, groups) + nothing_here");
    let error = diagnose("pool.wgsl", &broken, &[]).expect("an unknown identifier");
    assert!(error.message.contains("nothing_here") && error.line > 0, "{error}");
}

#[test]
fn a_wrong_forward_kernel_fails_its_checks() {
    let Some(mut lab) = lab() else { return };
    let wrong = edit("fn avg_pool2_forward", "0.25 * (", "0.3 * (");
    let report = pollster::block_on(lab.check("pool.wgsl", &wrong));
    let text = report.to_string();
    assert!(report.failed() > 0 && text.contains("FAIL avg_pool2_forward"), "{text}");
    assert!(text.contains("first wrong element"), "{text}");
}

#[test]
fn a_wrong_backward_kernel_fails_its_twin_and_the_finite_differences() {
    let Some(mut lab) = lab() else { return };
    let wrong = edit("fn avg_pool2_backward", "0.25 * dy_only", "0.5 * dy_only");
    let report = pollster::block_on(lab.check("pool.wgsl", &wrong));
    let text = report.to_string();
    assert!(text.contains("FAIL avg_pool2_backward"), "{text}");
    assert!(text.contains("FAIL gradient of avg_pool2") && text.contains("finite difference"), "{text}");
}

#[test]
fn a_correct_edit_passes_and_is_timed() {
    let Some(mut lab) = lab() else { return };
    let same = format!("{POOL}\n// an edit that changes nothing\n");
    let report = pollster::block_on(lab.check("pool.wgsl", &same));
    assert_eq!(report.failed(), 0, "{report}");
    assert!(report.passed() > 20, "{report}");
    assert!(report.times.iter().any(|t| t.kernel == "avg_pool2_backward" && t.edited > 0.0), "{report}");
}

#[test]
fn empty_half_written_and_deleted_files_leave_the_lab_working() {
    let Some(mut lab) = lab() else { return };
    let empty = pollster::block_on(lab.check("pool.wgsl", ""));
    assert!(empty.compile_error.as_ref().is_some_and(|e| e.message.contains("has no entry point")), "{empty}");
    let half = &POOL[..POOL.len() / 2];
    let partial = pollster::block_on(lab.check("pool.wgsl", half));
    assert!(partial.compile_error.is_some(), "{partial}");
    // The last good version (the shipped one) is still in use, and the next good save checks out.
    let good = pollster::block_on(lab.check("pool.wgsl", &format!("{POOL}\n")));
    assert_eq!(good.failed(), 0, "{good}");
    lab.forget("pool.wgsl");
    assert!(!lab.changed("pool.wgsl", POOL));
}

#[test]
fn an_error_in_common_wgsl_is_located_there() {
    let Some(mut lab) = lab() else { return };
    let common = octconv::ops::kernel::COMMON.source;
    let broken =
        common.replacen("return select(v, max(v, 0.0), relu == 1u);", "return select(v, max(v, 0.0) relu == 1u);", 1);
    assert_ne!(broken, common, "the edit applies");
    let line = broken.lines().position(|l| l.contains("max(v, 0.0) relu")).unwrap() + 1;
    let report = pollster::block_on(lab.check("common.wgsl", &broken));
    let error = report.compile_error.as_ref().expect("a syntax error");
    assert_eq!((error.file.as_str(), error.line), ("common.wgsl", line), "{report}");
}

#[test]
fn a_short_training_run_compares_the_edited_kernels_with_the_shipped_ones() {
    let Some(mut lab) = lab() else { return };
    let mut report = pollster::block_on(lab.check("pool.wgsl", &format!("{POOL}\n// unchanged\n")));
    pollster::block_on(lab.train_check(&mut report, &common::bars(256, 8), 4));
    let training = report.training.as_ref().expect("the checks passed, so it trained");
    assert_eq!(training.shipped.len(), 4);
    assert_eq!(training.problem(), None, "{report}");
    assert!(report.findings.last().is_some_and(|f| f.passed && f.text.contains("training 4 steps")), "{report}");
}

#[test]
fn a_nan_or_a_diverging_loss_is_flagged() {
    use octconv::lab::TrainComparison;
    let shipped = vec![(10, 2.0), (20, 1.0)];
    let nan = TrainComparison { shipped: shipped.clone(), edited: vec![(10, 2.0), (20, f64::NAN)] };
    assert!(nan.problem().unwrap().contains("NaN by step 20"));
    let diverging = TrainComparison { shipped: shipped.clone(), edited: vec![(10, 2.1), (20, 2.3)] };
    assert!(diverging.problem().unwrap().contains("training diverges"));
    let close = TrainComparison { shipped, edited: vec![(10, 2.01), (20, 1.02)] };
    assert_eq!(close.problem(), None);
}

#[test]
fn sweep_lines_and_constants_are_read_and_replaced() {
    use octconv::lab::{sweep_specs, with_constant, SweepSpec};
    let text = "// lab: TILE = 4, 8,16\nconst TILE: u32 = 4u;\n// lab: nothing\nconst OTHER = 1;\n";
    assert_eq!(
        sweep_specs(text),
        [SweepSpec { constant: "TILE".into(), values: vec!["4".into(), "8".into(), "16".into()] }]
    );
    assert_eq!(
        with_constant(text, "TILE", "8").unwrap(),
        "// lab: TILE = 4, 8,16\nconst TILE: u32 = 8;\n// lab: nothing\nconst OTHER = 1;\n"
    );
    assert_eq!(with_constant(text, "OTHER", "2").unwrap().lines().nth(3), Some("const OTHER = 2;"));
    assert_eq!(with_constant(text, "TIL", "2"), None, "a prefix of a name is not the name");
}

/// A variant that fails a check is dropped; the passing one is ranked; the
/// file as written is in use afterwards.
#[test]
fn a_sweep_drops_failing_variants_and_ranks_the_rest() {
    let Some(mut lab) = lab() else { return };
    let swept = format!(
        "// lab: SCALE = 0.5, 0.25\nconst SCALE: f32 = 0.25;\n{}",
        edit("fn avg_pool2_backward", "0.25 * dy_only", "SCALE * dy_only")
    );
    let report = pollster::block_on(lab.check("pool.wgsl", &swept));
    assert_eq!(report.failed(), 0, "{report}");
    let sweeps = pollster::block_on(lab.sweep("pool.wgsl", &swept));
    assert_eq!(sweeps.len(), 1);
    let sweep = &sweeps[0];
    let ranked: Vec<&str> = sweep.ranked().iter().map(|v| v.value.as_str()).collect();
    let dropped: Vec<&str> = sweep.dropped().iter().map(|v| v.value.as_str()).collect();
    assert_eq!((ranked, dropped), (vec!["0.25"], vec!["0.5"]), "{sweep}");
    assert!(sweep.to_string().contains("dropped SCALE = 0.5"), "{sweep}");
    assert!(!lab.changed("pool.wgsl", &swept), "the file as written is in use again");
}

/// A variant that does the same work plus a busy loop ranks below the plain
/// one. (The one test here that compares times: the loop makes the variant
/// tens of times slower, far beyond any noise.)
#[test]
fn a_slower_variant_ranks_below() {
    let Some(mut lab) = lab() else { return };
    let spin = "    var spin = 0.0;
    for (var i = 0u; i < EXTRA; i++) {
        spin = spin * 0.999 + 1.0;
    }
    if spin == 123456.0 {
        dx_from_dy[index] = spin;
        return;
    }
    let w = covering_window(index);";
    let body = edit("fn avg_pool2_backward", "    let w = covering_window(index);", spin);
    let swept = format!("// lab: EXTRA = 8000, 0\nconst EXTRA: u32 = 0u;\n{body}");
    let sweeps = pollster::block_on(lab.sweep("pool.wgsl", &swept));
    let ranked: Vec<&str> = sweeps[0].ranked().iter().map(|v| v.value.as_str()).collect();
    println!("{}", sweeps[0]);
    assert_eq!(ranked, ["0", "8000"], "{}", sweeps[0]);
}
