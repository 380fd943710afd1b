#!/usr/bin/env python3
"""PyTorch parity for octconv's seed network.

Builds the seed Octave MNIST net in PyTorch (same module and parameter
names), exports its state_dict with the safetensors package, and writes
fixed input images with PyTorch's logits for them:

    tests/fixtures/pytorch_seed.safetensors   the state_dict, as exported
    tests/fixtures/pytorch_logits.safetensors images [8,1,28,28] and logits [8,10]

then runs the Rust test that loads the state_dict into octconv and compares
the logits (`cargo test --release --test pytorch_parity`). The committed
fixtures let that test run where torch is not installed.

With --ours CHECKPOINT it also loads an octconv checkpoint into the PyTorch
module (strict: every name and shape must match) and prints its predictions
for the fixture images, showing that our checkpoints load in PyTorch.

Needs torch and safetensors: on Debian, `apt-get install python3-torch` and
`python3 -m pip install safetensors` (run with /usr/bin/python3).
"""

import argparse
import pathlib
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


class OctaveConv(nn.Module):
    """Octave convolution; a path exists only when both its channel counts are non-zero."""

    def __init__(self, in_channels, out_channels, alpha_in, alpha_out, kernel_size=3, padding=1):
        super().__init__()
        in_low, out_low = int(alpha_in * in_channels), int(alpha_out * out_channels)
        in_high, out_high = in_channels - in_low, out_channels - out_low
        conv = lambda i, o: nn.Conv2d(i, o, kernel_size, padding=padding) if i and o else None
        self.convH2H, self.convH2L = conv(in_high, out_high), conv(in_high, out_low)
        self.convL2H, self.convL2L = conv(in_low, out_high), conv(in_low, out_low)

    def forward(self, x):
        x_h, x_l = x if isinstance(x, tuple) else (x, None)
        y_h = y_l = None
        if self.convH2H is not None:
            y_h = self.convH2H(x_h)
        if self.convL2H is not None:
            up = F.interpolate(self.convL2H(x_l), scale_factor=2, mode="nearest")
            y_h = up if y_h is None else y_h + up
        if self.convH2L is not None:
            y_l = self.convH2L(F.avg_pool2d(x_h, 2))
        if self.convL2L is not None:
            low = self.convL2L(x_l)
            y_l = low if y_l is None else y_l + low
        return y_h, y_l


class Net(nn.Module):
    """The seed network: 3 octave convs + 2 linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = OctaveConv(1, 16, 0.0, 0.5)
        self.conv2 = OctaveConv(16, 32, 0.5, 0.5)
        self.conv3 = OctaveConv(32, 64, 0.5, 0.0)
        self.fc1 = nn.Linear(64 * 7 * 7, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x_h, x_l = self.conv1(x)
        x_h, x_l = F.relu(F.max_pool2d(x_h, 2)), F.relu(F.max_pool2d(x_l, 2))
        x_h, x_l = self.conv2((x_h, x_l))
        x, _ = self.conv3((x_h, x_l))
        x = F.max_pool2d(F.relu(x), 2)
        x = self.fc1(x.flatten(1))
        return self.fc2(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", type=pathlib.Path, help="an octconv checkpoint to load into PyTorch")
    parser.add_argument("--no-cargo", action="store_true", help="write the fixtures only")
    args = parser.parse_args()

    torch.manual_seed(2019)
    net = Net().eval()
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        logits = net(images)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, FIXTURES / "pytorch_seed.safetensors", metadata={"format": "pt", "source": "scripts/pytorch_parity.py"})
    save_file({"images": images, "logits": logits}, FIXTURES / "pytorch_logits.safetensors")
    print(f"torch {torch.__version__}: wrote {len(state)} tensors and the logits of {len(images)} images to {FIXTURES}")

    if args.ours:
        ours = Net().eval()
        ours.load_state_dict(load_file(args.ours), strict=True)
        with torch.no_grad():
            predicted = ours(images).argmax(1).tolist()
        print(f"{args.ours} loads in PyTorch (strict); its predictions for the fixture images: {predicted}")

    if not args.no_cargo:
        command = ["cargo", "test", "--release", "--test", "pytorch_parity", "--", "--nocapture"]
        sys.exit(subprocess.call(command, cwd=ROOT))


if __name__ == "__main__":
    main()
