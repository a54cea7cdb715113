"""rt3d-opt: like mlir-opt, for the rt3d dialect plus every upstream pass.

    rt3d-opt FILE.mlir --pass-pipeline='builtin.module(rt3d-recognize-kgs, canonicalize)'

Reads FILE (or stdin with ``-``), runs the pipeline, prints the IR. Errors
are printed as ``FILE:LINE:COL: error: MESSAGE`` like mlir-opt, so lit
tests can check them. ``--split-input-file`` treats ``// -----`` lines as
separators and processes each chunk on its own.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import check_output_path, write_text
from rt3d_mlir.tools.cli import EXIT_ERROR, ArgumentParser, bounded_int, run_tool

SPLIT_MARKER = re.compile(r"^// -----\s*$", re.MULTILINE)
_FILE_LOC = re.compile(r'^loc\("(?P<file>[^"]*)":(?P<line>\d+):(?P<col>\d+)\)$')


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rt3d-opt", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", default="-", help="input .mlir file (default: stdin)")
    parser.add_argument("--pass-pipeline", "-p", default="", help="textual pass pipeline")
    parser.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    parser.add_argument("--split-input-file", action="store_true", help="split on '// -----' lines")
    parser.add_argument("--list-passes", action="store_true", help="list the rt3d passes and exit")
    parser.add_argument(
        "--mlir-elide-elementsattrs-if-larger",
        type=bounded_int(0),
        default=None,
        metavar="N",
        help="print large constants as dense_resource<__elided__>",
    )
    return parser


def _format_location(location, filename: str, line_offset: int) -> str:
    text = str(location)
    match = _FILE_LOC.match(text)
    if match:
        line = int(match.group("line")) + line_offset
        return f"{filename}:{line}:{match.group('col')}"
    return text


def _format_diagnostics(err, filename: str, line_offset: int) -> list[str]:
    lines = []
    for diag in getattr(err, "error_diagnostics", []):
        lines.append(f"{_format_location(diag.location, filename, line_offset)}: error: {diag.message}")
        for note in diag.notes:
            lines.append(f"{_format_location(note.location, filename, line_offset)}: note: {note.message}")
    if not lines:
        lines.append(f"{filename}: error: {str(err).strip().splitlines()[0]}")
    return lines


def _process_chunk(
    text: str, pipeline: str, filename: str, line_offset: int, elide: int | None
) -> tuple[str, list[str]]:
    from torch_mlir import ir

    from rt3d_mlir.dialect import load_dialect
    from rt3d_mlir.passes import run_pipeline

    with ir.Context() as ctx:
        load_dialect(ctx)
        try:
            module = ir.Module.parse(text)
        except ir.MLIRError as err:
            return "", _format_diagnostics(err, filename, line_offset)
        if pipeline:
            try:
                run_pipeline(module, pipeline)
            except ir.MLIRError as err:
                return "", _format_diagnostics(err, filename, line_offset)
        return module.operation.get_asm(large_elements_limit=elide), []


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_passes:
        from rt3d_mlir.passes import PASS_REGISTRY

        for name, cls in sorted(PASS_REGISTRY.items()):
            print(f"{name}: {cls.summary}")
        return 0
    if args.output != "-":
        check_output_path(args.output)
    if args.input == "-":
        text, filename = sys.stdin.read(), "<stdin>"
    else:
        try:
            with open(args.input) as f:
                text = f.read()
        except OSError as err:
            raise Rt3dError(f"cannot read '{args.input}': {err.strerror}") from None
        filename = args.input
    if args.pass_pipeline:
        from rt3d_mlir.passes import parse_pipeline

        parse_pipeline(args.pass_pipeline)  # report syntax errors before any work
    chunks: list[tuple[str, int]] = []
    if args.split_input_file:
        start, offset = 0, 0
        for match in SPLIT_MARKER.finditer(text):
            chunks.append((text[start : match.start()], offset))
            offset += text[start : match.end()].count("\n")
            start = match.end()
        chunks.append((text[start:], offset))
    else:
        chunks.append((text, 0))
    outputs, failed = [], False
    for chunk, offset in chunks:
        printed, errors = _process_chunk(
            chunk, args.pass_pipeline, filename, offset, args.mlir_elide_elementsattrs_if_larger
        )
        for line in errors:
            sys.stderr.write(line + "\n")
        failed = failed or bool(errors)
        if printed:
            outputs.append(printed)
    rendered = "\n// -----\n".join(outputs)
    if args.output == "-":
        sys.stdout.write(rendered)
    elif not failed:
        write_text(args.output, rendered)
    return EXIT_ERROR if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-opt", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
