use octconv::cpu::AdamConfig;
use octconv::exec::{Device, Runner};
use octconv::gpu::{AdapterChoice, Gpu};
use octconv::nn::{ParamSet, SeedNet};
use std::rc::Rc;
fn main() {
    let gpu = Rc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).unwrap());
    let net = SeedNet::new();
    let params = ParamSet::init(&net.params(), 1);
    let model = net.graph(64, true).unwrap();
    let mut r = pollster::block_on(Runner::compile(&Device::Gpu(gpu), model, &params, AdamConfig::default())).unwrap();
    let Runner::Gpu(p) = &mut r else { panic!() };
    let times = p.profile(3);
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    for t in &times {
        println!(
            "{:<26} {:<34} {:>8.2} ms {:>8.2} GFLOP/s",
            t.kernel,
            t.node,
            t.seconds * 1e3,
            t.flops as f64 / t.seconds / 1e9
        );
    }
    println!("total {:.1} ms", total * 1e3);
}
