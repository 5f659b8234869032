# expect: pass
# The bundled PyTorch prediction run (torch.load of the checkpoint).
import os, runpy, subprocess, sys
models = os.environ["AF_MODELS"]
if not os.path.exists(os.path.join(models, "out", "model.pt")):
    subprocess.run([sys.executable, os.path.join(models, "train.py")], check=True)
script = os.path.join(models, "predictions.py")
sys.argv = [script, "--batches", "5"]
runpy.run_path(script, run_name="__main__")
