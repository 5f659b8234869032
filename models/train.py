"""Train a small MLP on generated data and save checkpoints with torch.save.

The bundled training workload of ai-forensics: it imports PyTorch, builds a
dataset, trains for a few epochs (forward, backward, optimiser step), writes a
checkpoint after every epoch and the final model. Deterministic (fixed seed).

    /usr/bin/python3 models/train.py [--out DIR] [--epochs N] [--steps N]
"""
import argparse
import os
import time

import torch
from torch import nn


def build_model(inputs: int = 32, hidden: int = 64, classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


def make_data(n: int, inputs: int = 32, classes: int = 4):
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(n, inputs, generator=g)
    w = torch.randn(inputs, classes, generator=g)
    y = (x @ w).argmax(dim=1)
    return x, y


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=os.path.join(here, "out"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=200, help="training steps per epoch")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()

    torch.manual_seed(0)
    os.makedirs(args.out, exist_ok=True)
    x, y = make_data(args.steps * args.batch)
    model = build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    start = time.monotonic()
    steps = 0
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for i in range(args.steps):
            xb = x[i * args.batch:(i + 1) * args.batch]
            yb = y[i * args.batch:(i + 1) * args.batch]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
        ckpt = os.path.join(args.out, f"checkpoint-epoch{epoch}.pt")
        torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict()}, ckpt)
        print(f"epoch {epoch}: loss {total / args.steps:.4f} -> {ckpt}", flush=True)
    final = os.path.join(args.out, "model.pt")
    torch.save(model.state_dict(), final)
    elapsed = time.monotonic() - start
    print(f"trained {steps} steps in {elapsed:.2f}s ({steps / elapsed:.1f} steps/s); model saved to {final}", flush=True)


if __name__ == "__main__":
    main()
