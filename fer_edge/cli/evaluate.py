"""`fer-edge evaluate`: accuracy, loss, macro-F1, per-class P/R/F1, confusion matrix."""
from __future__ import annotations

from typing import Optional

import typer

from fer_edge.cli.common import console, handle_errors, print_json, safe, write_json_file
from fer_edge.cli.app import app
from fer_edge.formats import backend_names


def render_report(rep: dict) -> None:
    from rich.table import Table

    c = console()
    c.print(f"[bold]{safe(rep['model'])}[/] ({safe(rep['format'])} {safe(rep['quantization'])}, backend {rep['backend']}) on "
            f"{rep['split']} = {safe(rep['split_source'])}, n={rep['n']}")
    if rep.get("selection_note"):
        c.print(f"note: {safe(rep['selection_note'])}")
    if rep.get("same_data_as_model") is False:
        c.print("note: this data is not the data the model was trained on (its recorded fingerprint differs)")
    if rep.get("classes_from_model"):
        c.print(f"classes: {safe(', '.join(rep['labels']))} ({safe(rep['classes_from_model'])})")
    c.print(f"accuracy [bold]{rep['accuracy']:.4f}[/]  loss {rep['loss']:.4f}  macro-F1 {rep['macro_f1']:.4f}")
    t = Table(title="per class")
    for col in ("class", "precision", "recall", "f1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for lab, m in rep["per_class"].items():
        t.add_row(safe(lab), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    c.print(t)
    cm = Table(title="confusion (rows = true, columns = predicted)")
    cm.add_column("")
    for lab in rep["labels"]:
        cm.add_column(safe(lab[:5]), justify="right")
    for lab, row in zip(rep["labels"], rep["confusion"]):
        cm.add_row(safe(lab), *[str(v) for v in row])
    c.print(cm)


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    model: str = typer.Argument(..., help="A .keras, .tflite or .onnx model (or a run directory)."),
    data: str = typer.Option("../shared/fer2013", "--data", help="FER2013 folder or fer2013.csv."),
    split: str = typer.Option("test", "--split", help="train | val | test | holdout (test = PrivateTest, else test/; holdout = the gate hold-out carved from Training)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Override the model's class mapping, or read it as fewer classes: --classes 4 on a 7-class model scores its kept classes' probabilities, renormalised, on those classes' images."),
    backend: Optional[str] = typer.Option(None, "--backend", help=backend_names()),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Stratified subsample of N images."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write the report as JSON to this file ('-' = stdout)."),
):
    """Evaluate a model on a FER2013 split through the same code for every format."""
    from fer_edge.evaluate import evaluate
    from fer_edge.outputs import check_outputs

    check_outputs([json_file], [model, data], overwrite=True, option="--json")

    from fer_edge.rundir import model_file

    p = model_file(model)  # a run directory stands for its model.keras
    rep = evaluate(p, data, split=split, classes=classes, backend=backend, limit=limit)
    if json_file == "-":
        return print_json(rep)
    render_report(rep)
    if json_file:
        write_json_file(json_file, rep)
