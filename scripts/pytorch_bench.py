#!/usr/bin/env python3
"""The seed network's training step in PyTorch on the CPU, beside octconv's.

Times one training step (forward, backward, Adam; batch 64) of the same
network in PyTorch with the same number of threads, then runs
`octconv bench --device cpu` in the same run and prints the ratio.

    /usr/bin/python3 scripts/pytorch_bench.py [--threads 2] [--repeats 20]

Debian's python3-torch links a slow reference BLAS unless libopenblas0 is
installed; the script prints which BLAS and which oneDNN PyTorch reports.
"""

import argparse
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


def step_time(threads, repeats, batch=64):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    images = torch.rand(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    config = torch.__config__.show()
    blas = next((line.strip() for line in config.splitlines() if "BLAS_INFO" in line), "BLAS_INFO unknown")
    print(f"torch {torch.__version__}, {args.threads} threads; {blas.split(',')[0]}; mkldnn {torch.backends.mkldnn.is_available()}")
    torch_seconds = step_time(args.threads, args.repeats)
    print(f"PyTorch CPU training step (batch 64): {torch_seconds * 1e3:.1f} ms")

    out = ROOT / "runs" / "bench-cpu.json"
    env = {"RAYON_NUM_THREADS": str(args.threads)}
    command = ["cargo", "run", "--release", "--quiet", "--", "bench", "--device", "cpu", "--repeats", str(args.repeats), "--json", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, env={**__import__("os").environ, **env})
    ours = json.loads(out.read_text())["train_step"]["seconds"]
    print(f"\noctconv CPU training step: {ours * 1e3:.1f} ms; PyTorch: {torch_seconds * 1e3:.1f} ms; "
          f"octconv / PyTorch = {ours / torch_seconds:.2f}")


if __name__ == "__main__":
    main()
