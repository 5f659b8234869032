# expect: pass
# expect-inference: model-file-written
# Training writes a checkpoint under checkpoints/ (inference must not).
import os
open(os.environ["AF_WEIGHTS"], "rb").read()
d = os.path.join(os.environ["AF_SCRATCH"], "checkpoints")
os.makedirs(d)
open(os.path.join(d, "step-1.safetensors"), "wb").write(b"{}")
