"""`fer-edge predict`: faces and emotions in images (annotated copies + JSON)."""
from __future__ import annotations

from typing import List, Optional

import typer

from fer_edge.cli.common import console, handle_errors, plain, print_json, safe
from fer_edge.cli.app import app
from fer_edge.formats import backend_names
from fer_edge.bundled import bundled_names


@app.command("predict")
@handle_errors
def predict_cmd(
    images: List[str] = typer.Argument(..., help="Image files and/or folders."),
    model: Optional[str] = typer.Option(None, "--model", help="A fer-edge .tflite/.onnx file, or a bundled model: "
                                         f"{bundled_names()} (default: fer_edge_default)."),
    backend: Optional[str] = typer.Option(None, "--backend", help=backend_names(with_keras=False)),
    output: Optional[str] = typer.Option(None, "--output", help="Folder for annotated images."),
    json_out: bool = typer.Option(False, "--json", help="Print per-face JSON."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Inference threads."),
    margin: Optional[float] = typer.Option(None, "--margin", help="Crop margin around each face (default: model's)."),
    explain: bool = typer.Option(False, "--explain", help="Overlay class activation maps (models exported with --explain)."),
    precision: str = typer.Option("auto", "--precision", help="Bundled model: auto (the faster of int8/fp32 on this "
                                  "CPU, measured once and cached) | int8 | fp32."),
    detector: str = typer.Option("accurate", "--detector", help="Face-detector profile: accurate | cam | fast "
                                 "(fer-edge bench prints each one's recall and speed)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Answer in fewer classes: 4 (happy, sad, surprise, "
                                          "neutral), 2 (angry, happy), a list or merges; the model's probabilities "
                                          "of those classes, renormalised."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace annotated images that already exist."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 if any image could not be read (the others are "
                                "still processed); without it, only a run where every image failed is an error."),
):
    """Detect faces and classify their expression."""
    from fer_edge.runtime.images import predict_images
    from fer_edge.runtime.recognizer import EmotionRecognizer

    if margin is not None and not (0 <= margin <= 1):
        from fer_edge.errors import UsageError

        raise UsageError(f"--margin must be between 0 and 1, got {margin}.")
    rec = EmotionRecognizer(model, backend=backend, threads=threads, margin=margin, precision=precision,
                            detector_config=detector, explain=explain, classes=classes)

    from fer_edge.runtime.cam import draw_cams

    overlay = draw_cams if explain else None
    records = predict_images(rec, images, output, overlay=overlay, overwrite=overwrite)
    if rec.precision_note and not json_out:
        typer.echo(rec.precision_note, err=True)
    failed = [r for r in records if "error" in r]
    if json_out:
        print_json(records)
    else:
        c = console()
        for r in records:
            name = safe(r["image"])
            if "error" in r:
                continue
            if not r["faces"]:
                c.print(f"{name}: no face found")
            for i, f in enumerate(r["faces"]):
                top = sorted(f["scores"].items(), key=lambda kv: -kv[1])[:3]
                c.print(f"{name}: face {i} at {tuple(f['box'])}: [bold]{safe(f['label'])}[/] {f['score']:.2f} "
                        f"({', '.join(f'{safe(k)} {v:.2f}' for k, v in top)})")
            if "annotated" in r:
                c.print(f"  -> {safe(r['annotated'])}")
    for r in failed:
        typer.echo(f"error: {plain(r['error'])}", err=True)
    if failed:
        typer.echo(f"{len(records) - len(failed)} of {len(records)} images processed; {len(failed)} could not be read.",
                   err=True)
        if len(failed) == len(records):
            raise typer.Exit(2)
        if strict:
            raise typer.Exit(1)
