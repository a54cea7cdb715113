"""The pass pipelines that take imported linalg IR down to the LLVM dialect."""

from __future__ import annotations

from rt3d_mlir.sparsity import format_group_shape


def sparse_conv_pipeline(
    group_shape: tuple[int, int] | None,
    target: str = "host",
    reference: bool = False,
    schedule: str = "",
) -> str:
    """Recognize kernel-group sparse convolutions and generate their vector kernels.

    ``reference=True`` lowers them to dense masked linalg convolutions
    instead (slow, obviously correct). Convolutions the generator does not
    take (non-constant weights) always get the reference lowering.
    """
    option = f"{{group-shape={format_group_shape(group_shape)}}}" if group_shape else ""
    target_option = f"{{target={target}}}"
    steps = [f"rt3d-recognize-kgs{option}"]
    if not reference:
        steps += [
            f"rt3d-pack-kernel-groups{target_option}",
            f"rt3d-reorder-loops{{target={target} {schedule}}}",
            "rt3d-vectorize",
            f"rt3d-vectorize-matmul{target_option}",
            f"rt3d-vectorize-pool{target_option}",
            f"rt3d-vectorize-elementwise{target_option}",
            f"rt3d-vectorize-pad{target_option}",
        ]
    steps += ["rt3d-lower-kgs-to-linalg", "canonicalize", "cse"]
    return ", ".join(steps)


def spirv_pipeline(group_shape: tuple[int, int] | None) -> str:
    """Recognize and pack the sparse convolutions for GPU kernels; named ops to generics.

    What remains is what :mod:`rt3d_mlir.backend.spirv_program` turns into
    dispatches: ``rt3d.packed_conv3d``, ``linalg.generic``, pads, reshapes
    and concats.
    """
    option = f"{{group-shape={format_group_shape(group_shape)}}}" if group_shape else ""
    return ", ".join(
        [
            f"rt3d-recognize-kgs{option}",
            "rt3d-pack-kernel-groups{target=spirv}",
            "canonicalize",
            "cse",
            "linalg-generalize-named-ops",
        ]
    )


def bufferize_pipeline(blob_file: str) -> str:
    """Tensors to buffers; the model output becomes a caller-provided out-param."""
    return ", ".join(
        [
            f"rt3d-externalize-weights{{blob-file={blob_file}}}",
            "one-shot-bufferize{bufferize-function-boundaries "
            "function-boundary-type-conversion=identity-layout-map}",
            "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}",
            "canonicalize",
            "buffer-deallocation-pipeline",
        ]
    )


LOOPS_TO_LLVM = ", ".join(
    [
        "rt3d-memref-copy-to-linalg",
        "convert-linalg-to-loops",
        "lower-affine",
        "canonicalize",
        "cse",
        "convert-scf-to-cf",
        "convert-vector-to-llvm",
        "expand-strided-metadata",
        "finalize-memref-to-llvm{use-generic-functions=1}",
        "convert-math-to-llvm",
        "convert-math-to-libm",  # what has no LLVM intrinsic (erf, tanh, ...) calls the C math library
        "convert-arith-to-llvm",
        "convert-index-to-llvm",
        "convert-func-to-llvm{use-bare-ptr-memref-call-conv=1}",
        "convert-cf-to-llvm",
        "reconcile-unrealized-casts",
    ]
)
