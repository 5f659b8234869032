"""Load the trained checkpoint and predict, as in the original design note.

The bundled inference workload of ai-forensics: it imports PyTorch, loads the
model written by train.py with torch.load, and runs batches of predictions.

    /usr/bin/python3 models/predictions.py [--model PATH] [--batches N]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import build_model, make_data  # noqa: E402


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default=os.path.join(here, "out", "model.pt"))
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()

    if not os.path.exists(args.model):
        sys.exit(f"no model at {args.model}: run models/train.py first")
    model = build_model()
    model.load_state_dict(torch.load(args.model))
    model.eval()
    x, _ = make_data(args.batches * args.batch)
    counts = [0, 0, 0, 0]
    start = time.monotonic()
    with torch.no_grad():
        for i in range(args.batches):
            pred = model(x[i * args.batch:(i + 1) * args.batch]).argmax(dim=1)
            for c in pred.tolist():
                counts[c] += 1
    elapsed = time.monotonic() - start
    print(f"predicted {sum(counts)} samples in {elapsed:.3f}s; classes {counts}", flush=True)


if __name__ == "__main__":
    main()
