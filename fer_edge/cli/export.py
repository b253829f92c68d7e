"""`fer-edge export`: TFLite / ONNX files with metadata, gated by a parity check."""
from __future__ import annotations

from typing import Optional

import typer

from fer_edge.cli.common import console, handle_errors, print_json, safe
from fer_edge.cli.app import app
from fer_edge.formats import EXPORT_FORMATS, QUANTIZATIONS
from fer_edge.rundir import EXPORT_DIR


def render_export(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"export of {report.source} (Keras val acc {report.keras_val_acc:.4f}, n={report.n_val})")
    for col in ("Format", "Quant", "Status", "Size KB", "Val acc", "Δacc pts", "Agreement", "Hold-out acc", "Δ pts",
                "Emulated CPU agr.", "ms/img"):
        t.add_column(col)

    def f(v, spec):
        return "" if v is None else format(v, spec)

    for r in report.rows:
        t.add_row(r.format, r.quantization, r.icon, f(r.size_kb, ".1f"), f(r.val_acc, ".4f"), f(r.delta_acc, "+.2f"),
                  f(r.agreement, ".4f"), f(r.holdout_acc, ".4f"), f(r.holdout_delta, "+.2f"), f(r.emulated_agreement, ".4f"),
                  f(r.ms_per_img, ".3f"))
    console().print(t)
    cpu = report.cpu or {}
    console().print(f"gate CPU: {escape(str(cpu.get('model')))} ({escape(str(cpu.get('class')))}); hold-out: "
                    f"{escape(report.holdout_source)}")
    from fer_edge.export.api import EMULATED_QUANTIZATIONS, QEMU_HINT

    if report.emulated_cpu:
        console().print(f"emulated CPU: {escape(report.emulated_cpu)}")
    elif any(r.quantization in EMULATED_QUANTIZATIONS for r in report.rows):
        # Said on the console, not only in the report: without qemu-user the quantized files were checked
        # on this CPU alone, and the CPU class that broke them before (AVX2, no VNNI) was not asked.
        console().print("emulated CPU: none, quantized answers checked on this CPU only "
                        f"({QEMU_HINT}, then export again)")
    for c in report.cross_format:
        console().print(f"cross-format: {c['a']} vs {c['b']}: top-1 agreement {c['agreement']:.4f} (n={c['n']})")
    for r in report.rows:
        if r.note:
            console().print(f"{r.icon} {r.format} {r.quantization}: {safe(r.note)}")
    console().print(f"report: {safe(report.out_dir)}/export_report.md")


@app.command("export")
@handle_errors
def export_cmd(
    model: Optional[str] = typer.Argument(None, help="A run directory or a .keras file."),
    format: str = typer.Option("all", "--format", help=" | ".join((*EXPORT_FORMATS, "all")) + " (comma list allowed)."),
    quantize: str = typer.Option("all", "--quantize", help=" | ".join((*QUANTIZATIONS, "all")) + "."),
    data: Optional[str] = typer.Option(None, "--data", help="FER2013 for calibration and the gate (default: the run's)."),
    out: Optional[str] = typer.Option(None, "--out", help=f"Output folder (default: RUN/{EXPORT_DIR})."),
    int8_io: str = typer.Option("uint8", "--int8-io", help="TFLite int8 input/output type: uint8 | int8 | float."),
    max_drop: float = typer.Option(1.5, "--max-drop", help="Largest int8/dynamic accuracy drop allowed, in points."),
    calib_size: int = typer.Option(500, "--calib-size", min=300, help="Representative images (stratified, >= 300)."),
    val_limit: Optional[int] = typer.Option(None, "--val-limit", help="Gate on a stratified subsample (faster)."),
    best: Optional[int] = typer.Option(None, "--best", help="Export the N best runs of --runs by val accuracy."),
    runs: str = typer.Option("runs", "--runs", help="Runs folder for --best."),
    stem: Optional[str] = typer.Option(None, "--stem", help="File name stem (default: ARCH_NCLASSESc)."),
    explain: bool = typer.Option(False, "--explain", help="Add a CAM output (GAP-headed architectures only)."),
    tta: str = typer.Option("none", "--tta", help="none | flip: average face and mirror image in the graph (2x MACs)."),
    onnx_int8: str = typer.Option("tflite", "--onnx-int8", help="ONNX int8 method: tflite (the TFLite int8 "
                                  "quantization converted: both files give the same answers) | ort (onnxruntime "
                                  "static QDQ, 7-bit weights)."),
    emulate: str = typer.Option("auto", "--emulate", help="Also run int8 files on an emulated second CPU class: auto "
                                "(x86-avx2 when qemu-user is installed) | none | x86-avx2."),
    emulate_faces: int = typer.Option(300, "--emulate-faces", min=20, help="Gate faces run on the emulated CPU "
                                      "(emulation is 10-100x slower: fewer faces for big or flip-TTA models)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report(s) as JSON."),
):
    """Export to TFLite/ONNX; non-zero exit when a gate fails (no file left under that name)."""
    from fer_edge.errors import UsageError
    from fer_edge.export.api import best_runs, export_model
    from fer_edge.formats import expand

    from fer_edge.errors import unknown
    from fer_edge.export.onnx import ONNX_INT8_METHODS

    expand(format, quantize)  # validate names before any heavy work
    if onnx_int8 not in ONNX_INT8_METHODS:
        raise unknown("ONNX int8 method", onnx_int8, ONNX_INT8_METHODS)
    if best:
        sources = best_runs(runs, best)
    elif model:
        sources = [model]
    else:
        raise UsageError("give a run directory / .keras file, or --best N --runs DIR.")
    reports = []
    log = (lambda *_: None) if json_out else (lambda m: console(stderr=True).print(m, markup=False, highlight=False))
    for src in sources:
        rep = export_model(src, format, quantize, data=data, out=out if len(sources) == 1 else None, int8_io=int8_io,
                           max_drop=max_drop, calib_size=calib_size, val_limit=val_limit, explain=explain, stem=stem, tta=tta,
                           onnx_int8=onnx_int8, emulate=emulate, emulate_n=emulate_faces, log=log)
        reports.append(rep)
        if not json_out:
            render_export(rep)
    if json_out:
        print_json([r.to_dict() for r in reports])
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
