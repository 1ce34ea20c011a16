"""Training throughput of a zoo model per batch size on this machine (forward+backward+step).

    python bench/train_throughput.py --arch fer_cnn --size 48 --threads 2

Prints milliseconds per image for each batch size; used to pick train.batch_size defaults.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ferxai.augment import AugmentSettings, augment_batch
from ferxai.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="fer_cnn")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=512, help="images per measurement")
    ap.add_argument("--batch-sizes", default="8,16,32,64,128,256")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.arch, num_classes=7, in_channels=args.channels, input_size=args.size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    aug = AugmentSettings()
    print(f"arch={args.arch} size={args.size} channels={args.channels} threads={args.threads}")
    print("batch_size  ms/image (train step)  ms/image (with augmentation)")
    for bs in map(int, args.batch_sizes.split(",")):
        x = torch.rand(bs, args.channels, args.size, args.size)
        y = torch.randint(0, 7, (bs,))
        results = []
        for augment in (False, True):
            steps = max(2, args.images // bs)
            for i in range(steps + 2):
                if i == 2:  # two warm-up steps
                    start = time.perf_counter()
                xb = augment_batch(x, aug, gen) if augment else x
                loss = F.cross_entropy(model(xb), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            results.append(1000 * (time.perf_counter() - start) / (steps * bs))
        print(f"{bs:10d}  {results[0]:20.2f}  {results[1]:28.2f}")


if __name__ == "__main__":
    main()
