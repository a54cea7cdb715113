"""Running compiled artifacts. Imports only numpy: deployable without the compiler."""

from rt3d_mlir.runtime.emulated import EmulatedModel
from rt3d_mlir.runtime.shared_object import CompiledModel, load

__all__ = ["CompiledModel", "EmulatedModel", "load"]
