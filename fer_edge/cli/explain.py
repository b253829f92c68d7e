"""`fer-edge explain`: Grad-CAM / CAM overlays on the host, and the checks behind docs/explain.md."""
from __future__ import annotations

from typing import List, Optional

import typer

from fer_edge.cli.common import console, handle_errors, print_json, write_json_file, safe
from fer_edge.cli.app import app


@app.command("explain")
@handle_errors
def explain_cmd(
    images: Optional[List[str]] = typer.Argument(None, help="Image files and/or folders."),
    model: str = typer.Option(..., "--model", help="A .keras model (or run directory)."),
    method: str = typer.Option("gradcam", "--method", help="gradcam | cam (GAP-headed models)."),
    target: str = typer.Option("top", "--target", help="top, or a class label to explain."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Explain the K most likely classes."),
    layer: Optional[str] = typer.Option(None, "--layer", help="Layer to explain (default: last conv)."),
    output: str = typer.Option("explain", "--output", help="Folder for the overlay PNGs."),
    json_out: bool = typer.Option(False, "--json", help="Print map statistics and paths as JSON."),
    checks: bool = typer.Option(False, "--checks", help="Run the sanity, deletion and edge-agreement checks."),
    data: str = typer.Option("../shared/fer2013", "--data", help="FER2013 for --checks (PublicTest sample)."),
    edge_model: Optional[str] = typer.Option(None, "--edge-model", help="A file exported with --explain, for --checks."),
    n: int = typer.Option(200, "--n", min=1, help="Faces for --checks."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace overlay PNGs that already exist."),
):
    """Explain predictions: one PNG per image with the face and heatmaps of its top classes."""
    from pathlib import Path

    from fer_edge.errors import UsageError
    from fer_edge.explain import explain_images, run_checks

    from fer_edge.rundir import model_file

    p = model_file(model)  # a run directory stands for its model.keras
    if checks:
        res = run_checks(p, data, edge_model=edge_model, n=n, method=method, out=output)
        write_json_file(Path(output) / "checks.json", res)
        return print_json(res)
    if not images:
        raise UsageError("give image files or folders to explain (or --checks).")
    records = explain_images(p, images, method=method, target=target, top_k=top_k, output=output, layer=layer,
                             overwrite=overwrite)
    if json_out:
        return print_json(records)
    c = console()
    for r in records:
        if not r["faces"]:
            c.print(f"{safe(r['image'])}: {safe(r.get('error') or r.get('note', 'no face found'))}")
            continue
        for f in r["faces"]:
            c.print(f"{safe(r['image'])}: face at {tuple(f['box'])}: " +
                    ", ".join(f"{safe(e['label'])} {e['score']:.2f}" for e in f["explained"]))
        c.print(f"  -> {safe(r['output'])}")
