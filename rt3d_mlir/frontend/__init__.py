"""From model files to linalg-on-tensors: loading, preparation, import."""

from rt3d_mlir.contracts.checkpoint import Checkpoint, save_checkpoint
from rt3d_mlir.frontend.importer import FUNCTION_NAME, check_input_shape, import_to_linalg
from rt3d_mlir.frontend.loading import LoadedModel, load_model_file
from rt3d_mlir.frontend.preparation import bake_pruning, prepare_for_import, prepare_graph

__all__ = [
    "FUNCTION_NAME",
    "Checkpoint",
    "LoadedModel",
    "bake_pruning",
    "check_input_shape",
    "import_to_linalg",
    "load_model_file",
    "prepare_for_import",
    "prepare_graph",
    "save_checkpoint",
]
