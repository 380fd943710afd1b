#!/usr/bin/env python3
"""The seed network's training step in PyTorch, beside octconv's.

Times one training step (forward, backward, Adam; batch 64) of the same
network in PyTorch with the same number of threads on the first 64 real
MNIST training images (10 warm-up steps, then the median of --repeats), then
runs `octconv bench --device cpu` on the same images in the same run and
prints the ratio against the target (octconv <= 0.7 x PyTorch).

    /usr/bin/python3 scripts/pytorch_bench.py [--data data/mnist] [--threads 2] [--repeats 50]
    python3 scripts/pytorch_bench.py --device cuda      # on a CUDA GPU, beside `octconv bench` on it

With --device cuda it times steps back to back (one synchronisation per 100
steps, as training runs) and compares with octconv's back-to-back step on
the GPU octconv picks; `--octconv-bin` names a built binary instead of cargo.

Debian's python3-torch links a slow reference BLAS unless libopenblas0 is
installed; the script prints which BLAS and which oneDNN PyTorch reports.
"""

import argparse
import gzip
import json
import pathlib
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from pytorch_parity import Net  # noqa: E402  (the same module as the parity check)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def mnist_batch(data, batch):
    """The first `batch` training images (scaled to [0, 1], as octconv reads them) and labels."""
    def idx(name):
        for path in (data / f"{name}.gz", data / name):
            if path.is_file():
                raw = path.read_bytes()
                return gzip.decompress(raw) if path.suffix == ".gz" else raw
        sys.exit(f"{data}: no {name}(.gz); run `octconv fetch --data {data}` or pass --data DIR")
    images = idx("train-images-idx3-ubyte")
    labels = idx("train-labels-idx1-ubyte")
    pixels = torch.frombuffer(bytearray(images[16:16 + batch * 784]), dtype=torch.uint8)
    x = pixels.to(torch.float32).div(255.0).reshape(batch, 1, 28, 28)
    y = torch.frombuffer(bytearray(labels[8:8 + batch]), dtype=torch.uint8).to(torch.int64)
    return x, y


def step_time(threads, repeats, images, labels, device="cpu"):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images, labels = images.to(device), labels.to(device)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    for _ in range(10):
        step()
    if device == "cuda":
        # Back to back, synchronised once per 100 steps, as an epoch runs.
        times = []
        for _ in range(max(repeats // 4, 3)):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(100):
                step()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / 100)
        return statistics.median(times)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--data", type=pathlib.Path, default=ROOT / "data" / "mnist", help="the MNIST folder")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--octconv-bin", help="a built octconv binary (default: cargo run --release)")
    args = parser.parse_args()
    images, labels = mnist_batch(args.data, 64)
    if args.device == "cuda":
        return compare_on_cuda(args, images, labels)

    config = torch.__config__.show()
    blas = next((line.strip() for line in config.splitlines() if "BLAS_INFO" in line), "BLAS_INFO unknown")
    print(f"torch {torch.__version__}, {args.threads} threads; {blas.split(',')[0]}; mkldnn {torch.backends.mkldnn.is_available()}; "
          f"the first 64 training images of {args.data}, 10 warm-up steps, median of {args.repeats}")
    torch_seconds = step_time(args.threads, args.repeats, images, labels)
    print(f"PyTorch CPU training step (batch 64): {torch_seconds * 1e3:.1f} ms")

    out = ROOT / "runs" / "bench-cpu.json"
    env = {"RAYON_NUM_THREADS": str(args.threads)}
    command = octconv_command(args) + ["bench", "--device", "cpu", "--repeats", str(args.repeats), "--json", str(out),
                                       "--data", str(args.data)]
    subprocess.run(command, cwd=ROOT, check=True, env={**__import__("os").environ, **env})
    ours = json.loads(out.read_text())["train_step"]["seconds"]
    ratio = ours / torch_seconds
    print(f"\noctconv CPU training step: {ours * 1e3:.1f} ms; PyTorch: {torch_seconds * 1e3:.1f} ms; "
          f"octconv / PyTorch = {ratio:.2f} (target <= 0.70: {'met' if ratio <= 0.7 else 'not met'})")


def octconv_command(args):
    if args.octconv_bin:
        return [args.octconv_bin]
    return ["cargo", "run", "--release", "--quiet", "--"]


def compare_on_cuda(args, images, labels):
    if not torch.cuda.is_available():
        sys.exit("--device cuda: this PyTorch sees no CUDA device; install a CUDA build of torch")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    torch_seconds = step_time(args.threads, args.repeats, images, labels, device="cuda")
    steps = 3 * -(-60000 // 64)
    print(f"PyTorch CUDA training step (batch 64, back to back): {torch_seconds * 1e3:.3f} ms "
          f"-> 3 epochs of MNIST ({steps} steps) in {torch_seconds * steps:.1f} s")
    out = ROOT / "runs" / "bench-gpu.json"
    subprocess.run(octconv_command(args) + ["bench", "--device", "gpu", "--repeats", str(args.repeats), "--json", str(out),
                                            "--data", str(args.data)], cwd=ROOT, check=True)
    ours = json.loads(out.read_text())["train_step"]["back_to_back_seconds"]
    print(f"\noctconv GPU training step (back to back): {ours * 1e3:.3f} ms -> 3 epochs in {ours * steps:.1f} s; "
          f"PyTorch CUDA: {torch_seconds * 1e3:.3f} ms; octconv / PyTorch = {ours / torch_seconds:.2f}")


if __name__ == "__main__":
    main()
