# expect: pass
# expect-inference: model-file-written
# The bundled PyTorch training run (it writes its checkpoint).
import os, runpy, sys
script = os.path.join(os.environ["AF_MODELS"], "train.py")
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
