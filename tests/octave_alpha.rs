//! The seed net generalised to any alpha, and the octave study: every alpha
//! builds and learns, alpha 0 is exactly the plain CNN, a checkpoint knows its
//! alpha, and `octconv study` writes its table, resumes, and reports the
//! measured step-time ratio.

mod common;

use octconv::checkpoint;
use octconv::exec::{self, Device};
use octconv::nn::{ConvLowering, ParamSet, SeedNet};
use octconv::optim::AdamConfig;
use octconv::train::train_epoch;

const ALPHAS: [f64; 5] = [0.0, 0.125, 0.25, 0.5, 0.75];

#[test]
fn the_net_learns_at_every_alpha() {
    let data = common::bars(128, 21);
    for alpha in ALPHAS {
        let net = SeedNet::with_alpha(alpha);
        let params = ParamSet::init(&net.params(), 2);
        let model = net.graph(32, true, ConvLowering::Direct).unwrap();
        let mut runner =
            pollster::block_on(exec::compile(&Device::Cpu, model, &params, AdamConfig::default())).unwrap();
        let on_device = pollster::block_on(runner.upload_dataset(&data)).unwrap();
        let mut losses = Vec::new();
        for epoch in 0..3 {
            let m = pollster::block_on(train_epoch(runner.as_mut(), on_device, 1, epoch, 100, |_, _| {})).unwrap();
            losses.push(m.loss());
        }
        println!("alpha {alpha}: losses {losses:?}");
        assert!(losses[2] < 0.8 * losses[0], "alpha {alpha}: the loss did not fall: {losses:?}");
    }
}

/// Alpha 0 is the plain CNN: one H→H convolution per layer with the seed's
/// channel counts, and nothing else.
#[test]
fn alpha_zero_has_exactly_the_parameters_of_the_plain_cnn() {
    let plain: Vec<(String, Vec<usize>)> = [
        ("conv1.convH2H.weight", vec![16, 1, 3, 3]),
        ("conv1.convH2H.bias", vec![16]),
        ("conv2.convH2H.weight", vec![32, 16, 3, 3]),
        ("conv2.convH2H.bias", vec![32]),
        ("conv3.convH2H.weight", vec![64, 32, 3, 3]),
        ("conv3.convH2H.bias", vec![64]),
        ("fc1.weight", vec![256, 3136]),
        ("fc1.bias", vec![256]),
        ("fc2.weight", vec![10, 256]),
        ("fc2.bias", vec![10]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    let net = SeedNet::with_alpha(0.0);
    let params: Vec<(String, Vec<usize>)> = net.params().into_iter().map(|p| (p.name, p.shape)).collect();
    assert_eq!(params, plain);
    assert_eq!(net.param_count(), 828_938);
    let graph = net.graph(2, false, ConvLowering::Direct).unwrap();
    assert_eq!(graph.features.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["conv1.high", "conv2.high"]);
    // Its forward cost: 3×3 convolutions at 28², 14², 14² and the two linear layers.
    let macs = 16 * 9 * 784 + 32 * 16 * 9 * 196 + 64 * 32 * 9 * 196 + 3136 * 256 + 2560;
    assert_eq!(net.forward_macs(), macs as u64);
    assert!(SeedNet::with_alpha(0.5).forward_macs() < net.forward_macs());
}

#[test]
fn a_checkpoint_of_one_alpha_refuses_another() {
    let dir = common::temp_dir("alpha-checkpoint");
    let net = SeedNet::with_alpha(0.25);
    let params = ParamSet::init(&net.params(), 1);
    let metadata = std::collections::HashMap::from([("alpha".to_string(), "0.25".to_string())]);
    let path = dir.join("quarter.safetensors");
    checkpoint::save(&path, &params, &metadata).unwrap();
    let saved = checkpoint::load(&path).unwrap();
    let (loaded, loaded_params) = saved.net_and_params(None, "quarter").unwrap();
    assert_eq!((loaded.alpha, loaded_params), (0.25, params));
    let err = saved.net_and_params(Some(0.5), "quarter").unwrap_err().to_string();
    assert_eq!(
        err,
        "quarter: holds the net with alpha 0.25, not 0.5; leave --alpha out to use the checkpoint's, or train a net with --alpha 0.5"
    );

    // The same sentence from the command line, with a non-zero exit.
    let (code, _, stderr) =
        common::octconv(&["eval", "--alpha", "0.5", "--device", "cpu", "--offline", "--model", path.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("holds the net with alpha 0.25, not 0.5"), "{stderr}");
}

#[test]
fn the_study_writes_its_table_and_resumes() {
    let dir = common::temp_dir("study");
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    common::write_mnist(&data, &common::bars(96, 5));
    let out = dir.join("out");
    let args = [
        "study",
        "--alphas",
        "0.5,0",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--batch",
        "32",
        "--timing-rounds",
        "2",
        "--device",
        "cpu",
        "--offline",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = common::octconv(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // The measured ratio of alpha 0.5's step to alpha 0's, on this device, in the study's own output.
    let timing = stdout.lines().find(|l| l.trim_start().starts_with("alpha 0.5")).expect("a timing line for 0.5");
    assert!(timing.contains("× alpha 0"), "{timing}");
    let csv = std::fs::read_to_string(out.join("mnist/study.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("0,2,") && rows[1].starts_with("0.5,2,"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mnist/study.json")).unwrap()).unwrap();
    assert_eq!(json["alphas"][1]["accuracies"].as_array().unwrap().len(), 2);
    assert!(json["alphas"][1]["step_ratio"].as_f64().unwrap() > 0.0);
    let svg = std::fs::read_to_string(out.join("mnist/study.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("α 0.5"), "the picture names its points");

    // A second call repeats no run and reports the same accuracies.
    let (code, stdout, stderr) = common::octconv(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("4 of 4 runs already finished"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(out.join("mnist/study.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(4).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        csv.lines().skip(1).map(|l| l.split(',').take(4).collect::<Vec<_>>()).collect::<Vec<_>>()
    );
}

#[test]
fn a_bad_alpha_is_refused() {
    for args in
        [&["study", "--alphas", "0,1"][..], &["train", "--alpha=-0.5", "--epochs", "1"], &["flops", "--alpha", "2"]]
    {
        let (code, _, stderr) = common::octconv(args);
        assert_ne!(code, 0, "octconv {args:?} succeeded");
        assert!(stderr.contains("alpha must be at least 0 and below 1"), "octconv {args:?}: {stderr}");
    }
}
