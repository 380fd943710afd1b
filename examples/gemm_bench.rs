use octconv::gpu::{kernels, AdapterChoice, Gpu};
use octconv::ops::Op;
use octconv::tensor::Tensor;
fn main() {
    let gpu = pollster::block_on(Gpu::new(&AdapterChoice::from_env())).unwrap();
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(512);
    let x = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 1)).unwrap();
    let w = gpu.upload(&Tensor::uniform(&[n, n], -1.0, 1.0, 2)).unwrap();
    let b = gpu.upload(&Tensor::zeros(&[n])).unwrap();
    let y = gpu.storage_buffer(n * n, "y");
    let launch = kernels::launch_for(&Op::Linear, &[&[n, n], &[n, n], &[n]], &[n, n]).unwrap();
    let pipeline = pollster::block_on(gpu.pipeline(launch.kernel)).unwrap();
    let bg = gpu.bind(&pipeline, &launch, &[&x.buffer, &w.buffer, &b.buffer, &y]);
    let mut times = vec![];
    for rep in 0..12 {
        let t = std::time::Instant::now();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            Gpu::dispatch(&mut pass, &pipeline, &bg, &launch);
        }
        gpu.queue.submit([enc.finish()]);
        gpu.device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let s = t.elapsed().as_secs_f64();
        if rep > 0 {
            times.push(s);
        }
    }
    times.sort_by(f64::total_cmp);
    let g = |s: f64| 2.0 * (n * n * n) as f64 / s / 1e9;
    println!("{n}^3 matmul: best {:.2} GFLOP/s, median {:.2}", g(times[0]), g(times[times.len() / 2]));
}
