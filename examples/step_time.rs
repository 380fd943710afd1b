use octconv::cpu::AdamConfig;
use octconv::exec::{Device, Runner};
use octconv::gpu::{AdapterChoice, Gpu};
use octconv::nn::{ParamSet, SeedNet};
use octconv::tensor::Tensor;
use std::rc::Rc;
fn main() {
    let gpu = Rc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).unwrap());
    let net = SeedNet::new();
    let params = ParamSet::init(&net.params(), 1);
    let model = net.graph(64, true).unwrap();
    let mut r = pollster::block_on(Runner::compile(
        &if std::env::var("CPU").is_ok() { Device::Cpu } else { Device::Gpu(gpu.clone()) },
        model,
        &params,
        AdamConfig::default(),
    ))
    .unwrap();
    let (images, labels) = if std::env::var("REAL").is_ok() {
        let d = octconv::data::load_split(
            octconv::data::DatasetKind::Digits,
            std::path::Path::new("../shared/data/mnist"),
            octconv::data::Split::Test,
            false,
        )
        .unwrap();
        d.batch(&(0..64).collect::<Vec<_>>(), 64)
    } else {
        (Tensor::uniform(&[64, 1, 28, 28], 0.0, 1.0, 1).data, Tensor::labels(64, 10, 2).data)
    };
    for round in 0..3 {
        let t = std::time::Instant::now();
        for _ in 0..10 {
            r.write_batch(&images, &labels);
            r.train_step();
        }
        pollster::block_on(r.metrics()).unwrap();
        println!("round {round}: {:.1} ms/step (submit all, wait once)", t.elapsed().as_secs_f64() * 100.0);
        let t = std::time::Instant::now();
        for _ in 0..10 {
            r.write_batch(&images, &labels);
            r.train_step();
            let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
        }
        println!("round {round}: {:.1} ms/step (wait each)", t.elapsed().as_secs_f64() * 100.0);
    }
}
