"""The CPU targets (host x86-64, AArch64): imported linalg to a shared object with the rt3d C ABI.

Stages: the sparse-convolution passes (``rt3d-recognize-kgs``, packing,
scheduling, the vector kernels of :mod:`rt3d_mlir.codegen.cpu`),
bufferization (weights move to a binary blob), lowering to the LLVM
dialect. Emit: LLVM dialect -> LLVM 22 IR (``mlir-translate-22``) -> one
shared object with the C glue of :mod:`rt3d_mlir.backend.abi`
(``clang-22`` + ``lld``), written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch_mlir import ir

from rt3d_mlir.backend.abi import (
    Dispatch,
    WeightSymbol,
    info_json,
    version_script,
    weights_assembly,
    wrapper_source,
)
from rt3d_mlir.backend.cpu_features import cpu_features
from rt3d_mlir.backend.targets import Build, BuildOptions, CompileTarget, Stage
from rt3d_mlir.backend.toolchain import (
    CLANG,
    LLD,
    LLVM_SPLIT,
    MLIR_TRANSLATE,
    find_tool,
    run_tool,
    run_tools,
)
from rt3d_mlir.backend.tuning import ScheduleCache, default_cache_path, machine_identity, tune_schedules
from rt3d_mlir.codegen.cpu.conv import TILE_LOAD_NAME
from rt3d_mlir.contracts.shared_object import FORWARD_IMPL_SYMBOL
from rt3d_mlir.dialect.attributes import (
    BLOB_OFFSET_ATTR,
    BLOB_SIZE_ATTR,
    DENSE_FLOPS_ATTR,
    FLOPS_ATTR,
    KERNEL_ATTR,
    TASKS_ATTR,
)
from rt3d_mlir.errors import ToolchainError, UnsupportedModelError, describe_location
from rt3d_mlir.fileio import atomic_output, write_text
from rt3d_mlir.ir_matchers import int_attr, ops_named, top_level_ops
from rt3d_mlir.kernel_packing import PRECISIONS
from rt3d_mlir.passes import check_pipeline, run_pipeline
from rt3d_mlir.sparsity import format_group_shape
from rt3d_mlir.targets import Target, get_target


def conv_vector_width(target: Target, precision: str = "fp32", native_f16: bool = False) -> int:
    """The filters of a conv block and the channels of a blocked activation (0: the target's f32
    lanes). fp16 computed in f16 takes a register's f16 lanes (8 on AArch64: one ``fmla`` of
    8 halves adds a channel to 8 filters), so the f32 accumulators of a block take two registers."""
    return 2 * target.f32_lanes if precision == "fp16" and native_f16 else 0


def widened_group_shape(
    target: Target, precision: str, amx: bool, int8_dot: str = ""
) -> tuple[int, int] | None:
    """The group shape that kernel groups of fewer filters are widened to (their masks the union of
    the groups they cover), or None: a lane's worth of filters and channels in bf16 builds on AMX
    CPUs and in int8 builds with AVX-512 VNNI. An AMX tile product multiplies 16 filters by 16
    positions at once; groups of 4 filters would get "width" kernels in f32 instead: C3D with 4x4
    KGS at 2.6x took 160.6 ms that way and 59.1 ms widened, about what the dense bf16 build takes
    (``bench/RESULTS.md``). int8 dot products (``vpdpbusd``) sum into 16 int32 lanes, one filter
    each: narrower blocks would keep f32 kernels. (AArch64's ``sdot`` has 4 lanes: 4x4 groups
    already fill them.)"""
    wide = (target.f32_lanes, target.f32_lanes)
    if precision == "bf16" and amx:
        return wide
    if precision == "int8" and int8_dot == "vnni":
        return wide
    return None


def packing_pipeline(
    group_shape: tuple[int, int] | None,
    target: str = "host",
    reference: bool = False,
    vector_width: int = 0,
    widen_to: tuple[int, int] | None = None,
) -> str:
    """Recognize kernel-group sparse convolutions and pack their kept weights into vector blocks
    (``reference=True``: recognize only; ``vector_width``: filters per block, 0: the target's f32
    lanes; ``widen_to``: narrower groups computed as groups of this shape, see
    :func:`widened_group_shape`); what per-layer tuning (``tune``) sees."""
    options = []
    if group_shape:
        options.append(f"group-shape={format_group_shape(group_shape)}")
    if widen_to and not reference:
        options.append(f"widen-to={format_group_shape(widen_to)}")
    steps = [f"rt3d-recognize-kgs{{{' '.join(options)}}}" if options else "rt3d-recognize-kgs"]
    if not reference:
        width = f" vector-width={vector_width}" if vector_width else ""
        steps += [
            f"rt3d-pad-channels{{target={target}{width}}}",
            f"rt3d-vectorize-depthwise{{target={target}}}",
            f"rt3d-pack-kernel-groups{{target={target}{width}}}",
        ]
    return ", ".join(steps)


def kernel_pipeline(
    target: str = "host",
    reference: bool = False,
    schedule: str = "",
    precision: str = "fp32",
    native_bf16: bool = False,
    amx: bool = False,
    native_f16: bool = False,
    vector_width: int = 0,
    int8_dot: str = "",
) -> str:
    """Schedule the packed convolutions (``schedule``: rt3d-reorder-loops options overriding every
    conv's) and replace every op a generator takes by its vector kernel (``reference=True``: the
    dense masked linalg lowering instead); ``precision`` of the blocked activations (and the
    weights of the convs reading them), ``native_bf16``: the CPU has AVX-512 BF16 at a rate worth
    using, ``amx``: it has AMX-BF16, ``native_f16``: it has f16 vector arithmetic worth using;
    ``vector_width``: the packing's (:func:`conv_vector_width`); ``precision="int8"``: the convs
    of int8-quantized inputs computed by int8 kernels (``int8_dot``: the CPU's dot product of int8
    quads, :attr:`Toolchain.int8_dot`)."""
    width = f" vector-width={vector_width}" if vector_width else ""
    target_option = f"{{target={target}{width}}}"
    steps = []
    if not reference:
        lanes = ""
        if vector_width:
            # blocks wider than the target's f32 vectors: an accumulator takes several registers,
            # and with f16 partial sums (a register each beside an accumulator's two) 8 of them
            # leave room for the weights and the input (24 of AArch64's 32 registers)
            machine = get_target(target)
            registers = machine.vector_registers * machine.f32_lanes // vector_width
            lanes = f"lanes={vector_width} registers={registers} accumulators=8 "
        steps += [
            f"rt3d-reorder-loops{{target={target} precision={precision} {lanes}{schedule}}}",
            *([f"rt3d-quantize-convs{target_option}"] if precision == "int8" else []),
            f"rt3d-propagate-layout{{target={target} precision={precision}{width}}}",
            f"rt3d-vectorize-pool{target_option}",  # before the convs: it may write a conv's padded input
            f"rt3d-vectorize{{target={target} native-bf16={int(native_bf16)} amx={int(amx)} "
            f"native-f16={int(native_f16)} int8-dot={int8_dot}{width}}}",
            *([f"rt3d-vectorize-quantize{target_option}"] if precision == "int8" else []),
            f"rt3d-vectorize-matmul{{target={target} precision={precision}}}",
            f"rt3d-vectorize-reduction{{target={target}}}",
            f"rt3d-vectorize-broadcast{target_option}",
            "rt3d-fuse-elementwise",
            f"rt3d-vectorize-elementwise{{target={target}}}",
            f"rt3d-vectorize-pad{target_option}",
        ]
    steps += ["rt3d-expand-exp", "rt3d-lower-kgs-to-linalg", "canonicalize", "cse"]
    return ", ".join(steps)


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
    packing = packing_pipeline(group_shape, target, reference)
    return f"{packing}, {kernel_pipeline(target, reference, schedule)}"


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
        # function by function: MLIR runs these on several functions (kernels) at once
        "func.func(convert-linalg-to-loops, lower-affine, canonicalize, cse, convert-scf-to-cf)",
        "convert-vector-to-llvm",
        "convert-ub-to-llvm",  # canonicalize leaves ub.poison for unread operands (e.g. of shuffles)
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


def entry_function(module: ir.Module, name: str) -> ir.Operation:
    for op in top_level_ops(module.operation, "func.func"):
        if ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op
    raise UnsupportedModelError(f"the imported module has no function '{name}'")


def entry_signature(func: ir.Operation) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape) of a one-tensor-in, one-tensor-out function."""
    ftype = ir.FunctionType(ir.TypeAttr(func.attributes["function_type"]).value)
    if len(ftype.inputs) != 1 or len(ftype.results) != 1:
        raise UnsupportedModelError(
            f"the model must take one tensor and return one tensor, it takes "
            f"{len(ftype.inputs)} and returns {len(ftype.results)}"
        )
    shapes = []
    for kind, value_type in (("input", ftype.inputs[0]), ("output", ftype.results[0])):
        tensor = ir.RankedTensorType(value_type)
        if not tensor.has_static_shape:
            raise UnsupportedModelError(f"the model's {kind} shape must be static")
        if tensor.element_type != ir.F32Type.get(func.context):
            raise UnsupportedModelError(f"the model's {kind} must be float32, not {tensor.element_type}")
        shapes.append(tuple(tensor.shape))
    return shapes[0], shapes[1]


@dataclass(frozen=True)
class Toolchain:
    """The tools and CPU choice for one CPU target, resolved once before any work."""

    target: Target
    mlir_translate: str
    clang: str
    llvm_split: str
    cpu: str  # as clang resolves it (``native`` becomes this machine's CPU name)
    features: tuple[str, ...]  # /proc/cpuinfo names of the extensions the code may use
    # the CPU the compiles name: the one chosen (``native``), whose features are ``features``. Not the
    # resolved name: on a VM whose CPUID model clang misreads, ``native`` resolved to rocketlake
    # (no AMX) while enabling the AMX the host has, and AMX kernels then failed to compile
    chosen_cpu: str

    def info(self, precision: str = "fp32") -> str:
        return info_json(self.target.name, self.target.triple, self.cpu, self.features, precision)

    @property
    def native_bf16(self) -> bool:
        """The code may use AVX-512 BF16's dot products of bf16 pairs: where they are faster than f32
        FMAs. On AMX CPUs (Sapphire / Emerald Rapids) ``vdpbf16ps`` runs at half the FMA rate (bench/
        RESULTS.md: 80-86 against 175 GFLOP/s per core), so there AMX computes and other convs FMAs."""
        return self.target.name == "host" and "avx512_bf16" in self.features and not self.amx

    @property
    def bf16_convert(self) -> bool:
        """The CPU rounds f32 to bf16 itself (AVX-512 BF16 or AVX-NE-CONVERT; AArch64's BF16). Without
        it LLVM calls ``__truncsfbf2`` for each value, which GCC 12's libgcc does not have
        (``CpuBuild.bf16_rounding``)."""
        if self.target.name == "aarch64":
            return "bf16" in self.features
        return bool({"avx512_bf16", "avx_ne_convert"} & set(self.features))

    @property
    def amx(self) -> bool:
        """The code may use AMX-BF16 tiles."""
        return self.target.name == "host" and {"amx_tile", "amx_bf16"} <= set(self.features)

    @property
    def native_f16(self) -> bool:
        """The code may compute in f16: AArch64 with f16 vector arithmetic (``fmla`` on 8 halves,
        twice the f32 rate). Not on x86: with AVX-512 FP16 and blocks of 32 filters C3D measured
        slower than fp32 (bench/RESULTS.md), so there f16 is widened."""
        return self.target.name == "aarch64" and "asimdhp" in self.features

    @property
    def int8_dot(self) -> str:
        """The dot product int8 kernels use (a key of ``codegen.cpu.conv.INT8_DOTS``), "" for none:
        AVX-512 VNNI's ``vpdpbusd`` on x86 (16 int32 lanes), dotprod's ``sdot`` on AArch64."""
        if self.target.name == "host" and "avx512_vnni" in self.features and self.target.f32_lanes == 16:
            return "vnni"
        if self.target.name == "aarch64" and "asimddp" in self.features:
            return "sdot"
        return ""


def compile_jobs() -> int:
    """How many compilers run at once: the CPUs this process may use (at most 8)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def require_toolchain(target: Target, cpu: str | None = None) -> Toolchain:
    """The toolchain for ``target`` tuned for ``cpu``, or a ToolchainError naming the package
    (an unknown CPU name is a ToolchainError too)."""
    mlir_translate = find_tool(MLIR_TRANSLATE, target.name)
    clang = find_tool(CLANG, target.name)
    llvm_split = find_tool(LLVM_SPLIT, target.name)
    find_tool(LLD, target.name)
    chosen = cpu or target.default_cpu
    if not chosen or chosen.startswith("-") or not chosen.replace("-", "").replace("_", "").isalnum():
        raise ToolchainError(f"'{chosen}' is not a CPU name")
    resolved, features = cpu_features(clang, target, chosen)
    return Toolchain(target, mlir_translate, clang, llvm_split, resolved, tuple(features), chosen)


def _require_llvm_dialect(module: ir.Module) -> None:
    """Every op is in the LLVM dialect after lowering, or UnsupportedModelError names the first that is not.

    (An op the pipelines cannot lower would otherwise fail later, in
    mlir-translate or at link time, with a message about generated files.)
    """
    leftover: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name != "builtin.module" and not op.name.startswith("llvm."):
            leftover.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
    if leftover:
        op = leftover[0]
        raise UnsupportedModelError(
            f"unsupported operator '{op.name}': the CPU targets cannot lower it "
            f"(at {describe_location(op.location)})"
        )


def _weight_symbols(module: ir.Module) -> list[WeightSymbol]:
    symbols = []
    for op in top_level_ops(module.operation, "memref.global"):
        if BLOB_OFFSET_ATTR in op.attributes:
            symbols.append(
                WeightSymbol(
                    name=ir.StringAttr(op.attributes["sym_name"]).value,
                    offset=ir.IntegerAttr(op.attributes[BLOB_OFFSET_ATTR]).value,
                    size=ir.IntegerAttr(op.attributes[BLOB_SIZE_ATTR]).value,
                )
            )
    return symbols


def _buffer_bytes(type_: ir.Type) -> int:
    """Bytes of a static memref argument (0 for anything else)."""
    if not isinstance(type_, ir.MemRefType) or not type_.has_static_shape:
        return 0
    return math.prod(type_.shape) * getattr(type_.element_type, "width", 0) // 8


def _dispatches(module: ir.Module) -> list[Dispatch]:
    """The kernel dispatch declarations the C glue must define, in the order the model calls them
    (profiles list kernels in that order: ``rt3d_mlir.latency`` attributes them to layers by it)."""
    calls: dict[str, int] = {}
    for op in ops_named(module.operation, "func.call"):
        calls.setdefault(ir.FlatSymbolRefAttr(op.attributes["callee"]).value, len(calls))
    found = []
    for op in top_level_ops(module.operation, "func.func"):
        if KERNEL_ATTR not in op.attributes:
            continue
        ftype = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
        found.append(
            Dispatch(
                name=ir.StringAttr(op.attributes["sym_name"]).value,
                kernel=ir.StringAttr(op.attributes[KERNEL_ATTR]).value,
                arguments=len(ftype.inputs),
                tasks=ir.IntegerAttr(op.attributes[TASKS_ATTR]).value,
                flops=int_attr(op, FLOPS_ATTR),
                dense_flops=int_attr(op, DENSE_FLOPS_ATTR),
                bytes=sum(_buffer_bytes(t) for t in ftype.inputs),
            )
        )
    return sorted(found, key=lambda d: calls.get(d.name, len(calls)))  # stable: uncalled ones last


class CpuTarget(CompileTarget):
    """``host`` or ``aarch64``: a shared object with the rt3d C ABI."""

    STEPS = ("sparse convolutions", "bufferize", "lower to LLVM dialect", "translate to LLVM IR",
             "compile and link")

    def __init__(self, machine: Target) -> None:
        self.machine = machine
        self.name = machine.name  # type: ignore[misc]

    @contextlib.contextmanager
    def open(self, options: BuildOptions) -> Iterator[CpuBuild]:
        if options.tune and self.name != "host":
            raise UnsupportedModelError(
                f"--tune times kernels on this machine: it applies to the host target, not to {self.name}"
            )
        if options.tune and options.reference_kernels:
            raise UnsupportedModelError("--tune and --reference-kernels exclude each other")
        if options.precision not in PRECISIONS:
            raise UnsupportedModelError(
                f"precision '{options.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        if options.precision != "fp32" and options.reference_kernels:
            raise UnsupportedModelError("--reference-kernels computes in fp32 only")
        toolchain = require_toolchain(self.machine, options.cpu)
        # the schedule's options and the schedule cache are checked here, before minutes of import
        check_pipeline(sparse_conv_pipeline(None, self.name, options.reference_kernels, options.schedule))
        if options.tune:
            ScheduleCache.open(options.tune_cache or default_cache_path())
        with tempfile.TemporaryDirectory(prefix="rt3d-build-") as tmp:
            work = options.keep_intermediates or tmp
            os.makedirs(work, exist_ok=True)
            yield CpuBuild(toolchain, options, work)


class CpuBuild(Build):
    def __init__(self, toolchain: Toolchain, options: BuildOptions, work: str) -> None:
        self.toolchain, self.options, self.work = toolchain, options, work
        self.blob = os.path.join(work, "weights.bin")
        self.shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
        self.weights: list[WeightSymbol] = []
        self.dispatches: list[Dispatch] = []
        self.function = ""
        self.amx = False  # some kernel uses AMX tiles (the glue asks Linux for their state)
        self.candidate_kernels = ""  # the kernel pipeline of schedule-tuning candidates

    def stages(self, function: str, group_shape: tuple[int, int] | None) -> list[Stage]:
        options, target = self.options, self.toolchain.target.name
        self.function = function
        toolchain = self.toolchain
        width = conv_vector_width(toolchain.target, options.precision, toolchain.native_f16)
        packing = packing_pipeline(
            group_shape, target, options.reference_kernels, width,
            widened_group_shape(toolchain.target, options.precision, toolchain.amx, toolchain.int8_dot),
        )
        kernels = kernel_pipeline(
            target, options.reference_kernels, options.schedule, options.precision,
            toolchain.native_bf16, toolchain.amx, toolchain.native_f16, width, toolchain.int8_dot,
        )
        # tuning candidates: the same kernels (precision, instructions), each conv's own schedule
        self.candidate_kernels = kernel_pipeline(
            target, False, "", options.precision, toolchain.native_bf16, toolchain.amx,
            toolchain.native_f16, width, toolchain.int8_dot,
        )

        def sparse(module: ir.Module) -> None:
            run_pipeline(module, f"builtin.module({packing})")
            if options.tune:
                identity = machine_identity(self.toolchain.cpu, self.toolchain.target.triple)
                machine = self.toolchain.target
                tune_schedules(
                    module, machine, identity, self._build_candidate, options.tune_cache,
                    precision=options.precision,
                )
            run_pipeline(module, f"builtin.module({kernels})")

        return [
            ("sparse convolutions", sparse),
            ("bufferize", self._bufferize),
            ("lower to LLVM dialect", self._lower),
        ]

    def _build_candidate(self, module: ir.Operation, output: str) -> None:
        """Schedule-tuning: lower a packed module whose convs carry a candidate schedule each to an
        artifact at ``output`` (``--schedule`` does not apply: it would override the candidates)."""
        work = tempfile.mkdtemp(prefix="candidate-", dir=self.work)
        try:
            options = dataclasses.replace(self.options, tune=False, schedule="", keep_intermediates=None)
            build = CpuBuild(self.toolchain, options, work)
            build.function = self.function
            run_pipeline(module, f"builtin.module({self.candidate_kernels})")
            build._bufferize(module)
            build._lower(module)
            build.emit(module, output, lambda _step: None)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _bufferize(self, module: ir.Module) -> None:
        func = entry_function(module, self.function)
        self.shapes = entry_signature(func)
        func.attributes["sym_name"] = ir.StringAttr.get(FORWARD_IMPL_SYMBOL, module.context)
        run_pipeline(module, f"builtin.module({bufferize_pipeline(self.blob)})")
        self.weights = _weight_symbols(module)
        self.dispatches = _dispatches(module)
        self.amx = any(
            ir.StringAttr(op.attributes["sym_name"]).value == TILE_LOAD_NAME
            for op in top_level_ops(module.operation, "func.func")
        )
        if not self.weights:
            open(self.blob, "wb").close()

    @property
    def bf16_rounding(self) -> bool:
        """The kernels hold bf16 on a CPU that cannot round f32 to it: they round with integer
        vector operations, and the artifact defines ``__truncsfbf2`` (abi.py)."""
        return self.options.precision == "bf16" and not self.toolchain.bf16_convert

    def _lower(self, module: ir.Module) -> None:
        expand = "arith-expand{include-bf16=true}, " if self.bf16_rounding else ""
        run_pipeline(module, f"builtin.module({expand}{LOOPS_TO_LLVM})")
        _require_llvm_dialect(module)

    def emit(self, module: ir.Module, output: str, step: Callable[[str], None]) -> None:
        toolchain, work = self.toolchain, self.work
        target = toolchain.target
        llvm_mlir = os.path.join(work, "model.llvm.mlir")
        with open(llvm_mlir, "w") as f:
            module.operation.print(file=f, large_elements_limit=None)
        step("translate to LLVM IR")
        llvm_ir = os.path.join(work, "model.ll")
        run_tool([toolchain.mlir_translate, "--mlir-to-llvmir", llvm_mlir, "-o", llvm_ir], "mlir-translate")
        wrapper = os.path.join(work, "abi.c")
        info = toolchain.info(self.options.precision)
        write_text(wrapper, wrapper_source(target.name, *self.shapes, self.dispatches, info, self.amx,
                                           self.bf16_rounding))
        assembly = os.path.join(work, "weights.S")
        write_text(assembly, weights_assembly(os.path.abspath(self.blob), self.weights))
        exports = os.path.join(work, "exports.map")
        write_text(exports, version_script())
        step("compile and link")
        jobs = compile_jobs()
        sources = [llvm_ir]
        if jobs > 1:  # the kernels are independent: compile the module in pieces, in parallel
            stem = os.path.join(work, "model.part")
            run_tool([toolchain.llvm_split, f"-j{jobs}", "-o", stem, llvm_ir], "splitting the LLVM module")
            sources = [f"{stem}{i}" for i in range(jobs)]
        flags = [f"--target={target.triple}", f"{target.cpu_flag}={toolchain.chosen_cpu}", "-O3", "-fPIC"]
        ir_pieces = [["-Wno-override-module", "-x", "ir", source] for source in sources]
        inputs = [*ir_pieces, [wrapper], [assembly]]
        objects = [f"{source[-1]}.o" for source in inputs]
        compiles = [
            [toolchain.clang, *flags, "-c", *source, "-o", obj]
            for source, obj in zip(inputs, objects, strict=True)
        ]
        run_tools(compiles, "compiling the shared object", jobs)
        with atomic_output(output, executable=True) as partial:
            run_tool(
                [
                    toolchain.clang,
                    f"--target={target.triple}",
                    "-shared",
                    "-pthread",
                    "-fuse-ld=lld",
                    f"-Wl,--version-script={exports}",
                    "-Wl,-z,defs",
                    *objects,
                    "-lm",
                    "-o",
                    partial,
                ],
                "linking the shared object",
            )
