# lit configuration for the FileCheck tests under test/lit (run: lit test/lit).
# ruff: noqa: F821  (lit injects `config` and `lit_config`)
import os
import shutil
import sys

import lit.formats

config.name = "rt3d-mlir"
config.test_format = lit.formats.ShTest(False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = os.path.join(config.test_source_root, "build", "lit")
config.excludes = [".venv", "build", "bench", "rt3d_mlir", "Output"]

# The tools come from the interpreter's environment (the project venv).
bin_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = os.pathsep.join([bin_dir, config.environment.get("PATH", os.environ["PATH"])])
for name in ("HOME", "XDG_RUNTIME_DIR", "RT3D_DEBUG"):
    if name in os.environ:
        config.environment[name] = os.environ[name]

# FileCheck: LLVM 22's if installed, else the PyPI clone.
filecheck = shutil.which("FileCheck-22") or shutil.which("filecheck", path=bin_dir) or "filecheck"
config.substitutions.append(("FileCheck", filecheck))
config.substitutions.append(("%PYTHON", sys.executable))
