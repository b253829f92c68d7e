"""`fer-edge bench`: the benchmark table (see fer_edge.bench for what lives where and what each row measures)."""
from __future__ import annotations

from typing import List, Optional

import typer

from fer_edge.cli.common import console, handle_errors, safe
from fer_edge.cli.app import app
from fer_edge.formats import backend_names


def _ints(text: str, name: str) -> list[int]:
    from fer_edge.errors import UsageError

    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--{name} takes a comma list of integers like 1,2 (got '{text}').") from None
    if not vals or min(vals) < 1:
        raise UsageError(f"--{name} values must be >= 1 (got '{text}').")
    return vals


def render(result) -> None:
    from rich.markup import escape
    from rich.table import Table

    c = console()
    e = result.env
    ci = e.get("cpu_info", {})
    c.print(f"[bold]host[/]: {escape(str(e['cpu']))} | {e['cores']} cores | {e['ram_gb']} GB RAM | {e['os']} | "
            f"Python {e['python']}")
    c.print(f"[bold]cpu[/]: {escape(str(ci.get('class', '?')))}: {escape(', '.join(ci.get('features', [])) or '?')}")
    c.print("[bold]runtimes[/]: " + ", ".join(f"{k} {v}" for k, v in e["versions"].items()))
    peaks = "; ".join(f"{t} thr: fp32 {p.get('fp32')} / int8 {p.get('int8')}" for t, p in e.get("peak_gmacs", {}).items())
    c.print(f"[bold]gpu[/]: {escape(str(e['gpu']['summary']))} | GEMM peak GMAC/s ({peaks}; eff. = a row's MAC/s "
            f"over the peak of its arithmetic) | reference: {escape(str(e.get('tensorflow_reference')))}")
    t = Table(title="fer-edge bench")
    rounds = any(r.spread is not None for r in result.rows)
    cols = ("Format", "Backend", "Quant", "Thr", "Batch", "Status", "Size KB", "Acc", "ms/img p50", "p90", "img/s",
            "vs TF", "eff.") + (("spread",) if rounds else ())
    for col in cols:
        t.add_column(col, justify="left" if col in ("Format", "Backend", "Quant", "Status") else "right")

    def f(v, spec="", suffix=""):
        return "" if v is None else f"{v:{spec}}{suffix}"

    for r in result.rows:
        backend = r.backend + (f" ({r.framework})" if r.framework and r.framework != "tensorflow" else "")
        t.add_row(safe(r.format), backend, safe(r.quantization), str(r.threads), str(r.batch),
                  r.icon + (f" {safe(r.reason[:60])}" if r.reason else ""), f(r.size_kb, ".1f"), f(r.accuracy, ".4f"),
                  f(r.ms_per_img_p50, ".3f"), f(r.ms_per_img_p90, ".3f"), f(r.img_per_s, ",.0f"),
                  f(r.speedup_vs_tf, ".1f", "x"), f(r.efficiency, ".1%"), *((f(r.spread, ".0%"),) if rounds else ()))
    c.print(t)
    if rounds:
        c.print(f"ms/img: the median of {result.settings.get('rounds')} rounds of the whole sweep; spread = (slowest - "
                "fastest round) / median, how much this machine's timing wandered during the run")
    if result.detector:
        d = Table(title="face detector profiles: composited real faces with known boxes, 640x480 (fer_edge.detect_bench)")
        for col in ("profile", "ms p50", "recall", "recall >= 60 px", "false pos./frame", "faces", "what"):
            d.add_column(col, justify="left" if col in ("profile", "what") else "right")
        for r in result.detector:
            if r.get("status") == "failed":
                d.add_row("❌ " + escape(r["reason"]), "", "", "", "", "", "")
            else:
                d.add_row(r["profile"], f"{r['ms_p50']:.2f}", f"{r['recall']:.3f}", f"{r['recall_60px']:.3f}",
                          f"{r['fp_per_frame']:.3f}", str(r["faces"]), escape(r["what"]))
        c.print(d)
    if result.video_recall:
        v = Table(title="cam pipeline on one-face 640x480 videos (60-240 px faces): frames with the face found")
        for col in ("profile", "frame recall", "worst video", "frames", "wrong boxes", "frames/s"):
            v.add_column(col, justify="left" if col == "profile" else "right")
        for r in result.video_recall:
            if r.get("status") == "failed":
                v.add_row("❌ " + escape(r["reason"]), "", "", "", "", "")
            else:
                v.add_row(r["profile"], f"{r['frame_recall']:.4f}", f"{r['min_video_recall']:.4f}", str(r["frames"]),
                          str(r["wrong_boxes"]), f"{r['fps']:.0f}")
        c.print(v)
    if result.end_to_end:
        t2 = Table(title="end to end (decode -> detect -> preprocess -> classify -> draw)")
        for col in ("model", "backend", "frames", "with a face", "frames/s", "decode", "detect", "classify", "draw"):
            t2.add_column(col, justify="right")
        for r in result.end_to_end:
            if r.get("status") != "ok":
                t2.add_row("❌ " + safe(r.get("reason", "")), "", "", "", "", "", "", "", "")
                continue
            ms = r["ms_per_frame"]
            t2.add_row(safe(r["file"].split("/")[-1]), r["backend"], str(r["frames"]), str(r.get("frames_with_face", "")),
                       f"{r['fps']:.0f}",
                       f"{ms['decode']:.2f}", f"{ms['detect']:.2f}", f"{ms['classify']:.2f}", f"{ms['draw']:.2f}")
        c.print(t2)
    for backend, p in (result.precision or {}).items():
        if p.get("status") == "failed":
            c.print(f"[bold]precision auto[/] ({backend}): ❌ {escape(p['reason'])}")
        else:
            ms = ", ".join(f"{k} {v:.3f} ms" for k, v in p["ms"].items())
            c.print(f"[bold]precision auto[/] ({backend}) picks [bold]{p['precision']}[/] on this CPU ({ms} per face, 1 thread)")


@app.command("bench")
@handle_errors
def bench_cmd(
    models: Optional[List[str]] = typer.Argument(None, help="Model files or an export folder (default: bundled)."),
    backend: str = typer.Option("all", "--backend", help="all | " + backend_names()),
    threads: str = typer.Option("1,2", "--threads", help="Comma list of thread counts."),
    batch: str = typer.Option("1,8,32", "--batch", help="Comma list of batch sizes."),
    device: str = typer.Option("cpu", "--device", help="cpu | gpu | all"),
    data: Optional[str] = typer.Option(None, "--data", help="FER2013 for accuracy rows (and demo video faces)."),
    split: str = typer.Option("val", "--split", help="Split for accuracy: val | test | train."),
    limit: Optional[int] = typer.Option(1000, "--limit", min=0, help="Stratified subsample for accuracy (0 = all)."),
    video: Optional[str] = typer.Option(None, "--video", help="Video for the end-to-end row (default: generated)."),
    min_time: float = typer.Option(1.0, "--min-time", min=0.0, help="Seconds of timed runs per row (at least --min-runs)."),
    min_runs: int = typer.Option(30, "--min-runs", min=1),
    rounds: int = typer.Option(1, "--rounds", min=1, help="Time the whole sweep N times; each row gives the median "
                               "of its rounds and their spread (for shared or throttled machines)."),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Skip detector and end-to-end rows."),
    frames: int = typer.Option(300, "--frames", min=1, help="Frames for the end-to-end row."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write every field as JSON."),
    csv_file: Optional[str] = typer.Option(None, "--csv", help="Write the rows as CSV."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Pareto chart PNG (accuracy vs latency)."),
):
    """Benchmark models per format, backend, threads and batch; plus detector and end-to-end FPS."""
    from fer_edge.bench import plot_pareto, run_bench, write_csv, write_json
    from fer_edge.outputs import check_outputs

    check_outputs([json_file, csv_file, plot], list(models or []) + ([video] if video else []), overwrite=True,
                  option="--json/--csv/--plot")
    result = run_bench(models, backend=backend, threads=_ints(threads, "threads"), batches=_ints(batch, "batch"),
                       device=device, data=data, split=split, limit=limit or None, video=video, min_time=min_time,
                       min_runs=min_runs, pipeline=not no_pipeline, e2e_frames=frames, rounds=rounds,
                       log=lambda m: console(stderr=True).print(m, markup=False, highlight=False))
    render(result)
    if json_file:
        write_json(result, json_file)
    if csv_file:
        write_csv(result, csv_file)
    if plot:
        plot_pareto(result, plot)
    if result.rows and all(r.status == "failed" for r in result.rows):
        typer.echo(f"error: every benchmark row failed ({len(result.rows)}); see the reasons above.", err=True)
        raise typer.Exit(1)
