"""The pith-cpu package (its library built without the `gpu` feature): a GPU request
runs on the CPU and says why. Run by scripts/test-python --cpu and, under qemu-user, by
scripts/test-aarch64-packages; PITH_MODELS names the models folder. Run it with `python -P`
so that the generated `pith.py` beside it does not stand in for the installed package."""

import os
import tempfile

import pith

config = pith.EngineConfig(
    models_dir=os.environ["PITH_MODELS"],
    db_path=os.path.join(tempfile.mkdtemp(), "cpu.db"),
    device=pith.Device.GPU,
)
engine = pith.Engine.open(config)
assert engine.device() == pith.Device.CPU, engine.device()
assert "no GPU support" in (engine.device_warning() or ""), engine.device_warning()
print(f"check_cpu_only: a GPU request runs on the CPU: {engine.device_warning()}")
