"""rt3d-bench on a tiny model: it builds, checks and times every variant in one run."""

from __future__ import annotations

import json

from test_cli import assert_one_line_error, run


def test_bench_times_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    result = run(
        "rt3d-bench",
        "--models",
        "c3d",
        "--variants",
        "dense,kgs:4x4:2,vanilla:4x4:2",
        "--input-size",
        "16,16,16",
        "--width",
        "0.0625",
        "--num-classes",
        "4",
        "--threads",
        "1",
        "--repeat",
        "2",
        "--warmup",
        "1",
        "--formats",
        "checkpoint,pt2",
        "--json",
        str(out),
        "--markdown",
        str(md),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    (model,) = report["models"]
    assert model["model"] == "c3d" and model["torch_dense_ms"] > 0
    builds = {b["variant"]: b for b in model["builds"]}
    labels = {"dense", "kgs 4x4 2x", "vanilla 4x4 2x"}
    assert set(builds) == labels | {f"{label} .pt2" for label in labels}
    assert builds["dense"]["flops_reduction"] == builds["dense .pt2"]["flops_reduction"] == 1.0
    assert report["meta"]["copy_gbps"] > 0 and report["meta"]["triad_gbps"] > 0
    for build in builds.values():
        assert build["max_rel_error"] <= 1e-4  # each build checked against PyTorch on its weights
        assert build["latency_ms"] > 0 and build["compile_seconds"] > 0 and build["compile_peak_rss_mib"] > 0
        convs = [k for k in build["layers"] if k["kernel"].startswith("rt3d_conv")]
        assert len(convs) == 8  # one profile entry per layer, shared kernels or not
        assert all(k["mbytes"] > 0 and k["gbps"] > 0 for k in convs)
    for name in ("kgs 4x4 2x", "vanilla 4x4 2x"):
        # Measured from the zeros; below 2x here because every group of these
        # 4-16-channel layers keeps at least one position.
        assert 1.1 < builds[name]["flops_reduction"] < 2.3
    assert "| kgs 4x4 2x |" in md.read_text()
    # the peers (installed with the dev dependencies) on the same weights, checked like our builds
    peers = {(p["peer"], p["variant"]): p for p in model["peers"]}
    assert set(peers) == {(p, v) for p in ("openvino", "openvino-f32", "onnxruntime") for v in labels}
    for peer in peers.values():
        assert peer["latency_ms"] > 0 and peer["setup_seconds"] > 0
        # OpenVINO in its default precision may compute in bf16 (rel. error about 1e-2)
        assert peer["max_rel_error"] <= (5e-2 if peer["precision"] in ("bf16", "f16") else 1e-4)
    assert peers["openvino-f32", "dense"]["precision"] == "f32"
    assert "| dense | " in md.read_text() and "openvino-f32" in md.read_text()


def test_bench_rejects_bad_arguments():
    assert_one_line_error(run("rt3d-bench", "--variants", "kgs:4x4:0.5"), "rate must be > 1")
    assert_one_line_error(run("rt3d-bench", "--variants", "sparse:4x4:2"), "variant must be")
    assert_one_line_error(run("rt3d-bench", "--models", "resnet"), "unknown model 'resnet'")
    assert_one_line_error(run("rt3d-bench", "--models", "yolo"), "the 2D net 'yolo' with bench/block_2d.py")
    assert_one_line_error(run("rt3d-bench", "--input-size", "16,112"), "--input-size must be D,H,W")
    assert_one_line_error(run("rt3d-bench", "--formats", "onnx"), "unknown format 'onnx'")
    assert_one_line_error(run("rt3d-bench", "--peers", "tvm"), "unknown peer 'tvm'")


def test_bench_builds_with_the_rules_and_measured_schedules_side_by_side(tmp_path):
    out, cache = tmp_path / "bench.json", tmp_path / "schedules.json"
    result = run(
        "rt3d-bench", "--models", "c3d", "--variants", "dense,kgs:4x4:2", "--input-size", "16,16,16",
        "--width", "0.0625", "--num-classes", "4", "--threads", "1", "--repeat", "2", "--warmup", "1",
        "--peers", "none", "--schedules", "rules,tuned", "--tune-cache", str(cache), "--json", str(out),
    )
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(out.read_text())["models"]
    builds = {b["variant"]: b for b in model["builds"]}
    assert set(builds) == {"dense", "dense tuned", "kgs 4x4 2x", "kgs 4x4 2x tuned"}
    for build in builds.values():
        assert build["max_rel_error"] <= 1e-4 and build["latency_ms"] > 0
    # timed on the bench's threads: every layer of both variants has a measured choice
    layers = json.loads(cache.read_text())["layers"]
    assert layers and all("threads=1" in entry["layer"] for entry in layers.values())


def test_bench_times_int8_builds_against_the_int8_scheme(tmp_path):
    # int8 builds: scales calibrated on the timed clip, travelling in the checkpoint; each build is
    # checked against the int8 scheme simulated in PyTorch (MAX_RELATIVE_ERROR["int8"])
    from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

    out = tmp_path / "bench.json"
    common = (
        "rt3d-bench", "--models", "c3d", "--variants", "dense,kgs:16x16:2", "--input-size", "16,32,32",
        "--width", "0.25", "--num-classes", "4", "--threads", "1", "--repeat", "2", "--warmup", "1",
        "--peers", "none", "--precisions", "fp32,int8",
    )
    result = run(*common, "--json", str(out))
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(out.read_text())["models"]
    builds = {b["variant"]: b for b in model["builds"]}
    assert set(builds) == {"dense", "dense int8", "kgs 16x16 2x", "kgs 16x16 2x int8"}
    for label, build in builds.items():
        precision = "int8" if label.endswith("int8") else "fp32"
        assert build["max_rel_error"] <= MAX_RELATIVE_ERROR[precision] and build["latency_ms"] > 0
    result = run(*common, "--formats", "checkpoint,pt2")
    assert_one_line_error(result, "rt3d-bench: error:", "int8 builds are benchmarked from checkpoints")
