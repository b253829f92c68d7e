"""`fer-edge cam`: webcam / video / stream with overlays, JSON lines and an output video."""
from __future__ import annotations

from typing import Optional

import typer

from fer_edge.cli.common import handle_errors, plain, print_json
from fer_edge.cli.app import app
from fer_edge.formats import backend_names
from fer_edge.bundled import bundled_names
from fer_edge.defaults import CAM_DEFAULTS


@app.command("cam")
@handle_errors
def cam_cmd(
    source: str = typer.Option("0", "--source", help="Webcam index (0, 1...), video file, stream URL, or 'demo' "
                               "(a generated 640x480 video of bundled FER faces)."),
    model: Optional[str] = typer.Option(None, "--model", help="A fer-edge .tflite/.onnx file, or a bundled model: "
                                         f"{bundled_names()} (default: fer_edge_default)."),
    backend: Optional[str] = typer.Option(None, "--backend", help=backend_names(with_keras=False)),
    display: bool = typer.Option(True, "--display/--no-display", help="Show a window (needs a GUI OpenCV)."),
    output: Optional[str] = typer.Option(None, "--output", help="Write the annotated video (.mp4/.avi)."),
    jsonl: Optional[str] = typer.Option(None, "--jsonl", help="Write one JSON line per frame."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after N frames."),
    fps_overlay: bool = typer.Option(False, "--fps-overlay", help="Draw the FPS on frames."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    smoothing: Optional[float] = typer.Option(CAM_DEFAULTS["smoothing"], "--smoothing", help="EMA weight of new probabilities (1 = none)."),
    detect_every: int = typer.Option(CAM_DEFAULTS["detect_every"], "--detect-every", min=1, help="Full-frame face detection every N frames; tracked faces are re-found nearby in between."),
    explain: bool = typer.Option(False, "--explain", help="Overlay class activation maps (models exported with --explain)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    precision: str = typer.Option("auto", "--precision", help="Bundled model: auto (the faster of int8/fp32 on this "
                                  "CPU, measured once and cached) | int8 | fp32."),
    detector: str = typer.Option(CAM_DEFAULTS["detector_config"], "--detector", help="Face-detector profile: cam (>= 99 % "
                                 "frame recall on one-face videos, faces >= 60 px) | fast (cheaper, misses small faces) "
                                 "| accurate (slow; still images)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Answer in fewer classes: 4 (happy, sad, surprise, "
                                          "neutral), 2 (angry, happy), a list or merges; the model's probabilities "
                                          "of those classes, renormalised."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --output/--jsonl files that already exist."),
):
    """Run live on a camera or a video; q/Esc quits, Ctrl-C closes the output cleanly."""
    from fer_edge.runtime.recognizer import EmotionRecognizer
    from fer_edge.runtime.video import has_gui, run_cam

    if display:
        ok, why = has_gui()
        if not ok:
            if output or jsonl:
                typer.echo(f"note: {why}; continuing without a window (--no-display).", err=True)
                display = False
            else:
                from fer_edge.errors import UsageError

                raise UsageError(f"cannot open a window: {why}. Use --no-display with --output out.mp4 "
                                 "and/or --jsonl events.jsonl.")
    import tempfile

    from fer_edge.outputs import check_outputs

    check_outputs([output, jsonl], [source, model] if source != "demo" else [model], overwrite,
                  option="--output" if output else "--jsonl")

    with tempfile.TemporaryDirectory() as tmp:
        if source == "demo":
            from fer_edge.demo import demo_faces, make_demo_video

            source = str(make_demo_video(f"{tmp}/demo.mp4", demo_faces(), frames=max_frames or 300))
        rec = EmotionRecognizer(model, backend=backend, threads=threads, smoothing=smoothing, detect_every=detect_every,
                                precision=precision, detector_config=detector, explain=explain, classes=classes)
        from fer_edge.runtime.cam import draw_cams

        overlay = draw_cams if explain else None
        stats = run_cam(rec, source, display=display, output=output, jsonl=jsonl, max_frames=max_frames,
                        fps_overlay=fps_overlay, overlay=overlay, log=lambda m: typer.echo(m, err=True))
    summary = stats.to_dict()
    summary["model"] = {"file": rec.backend.path.name, "backend": rec.backend.name, "choice": rec.precision_note}
    summary["detector"] = detector
    if output:
        summary["output"] = output
    if jsonl:
        summary["jsonl"] = jsonl
    if json_out:
        print_json(summary)
        return _exit_for(stats)
    ms = summary["ms_per_frame"]
    typer.echo(f"{summary['frames']} frames, {summary['faces']} faces, {summary['fps']} frames/s "
               f"(decode {ms['decode']} / detect {ms['detect']} / classify {ms['classify']} / draw {ms['draw']} ms); "
               f"{summary['frames_with_face']} frames with a face; ended: {summary['end_reason']}")
    typer.echo(plain(f"model {rec.backend.path.name} on {rec.backend.name}" + (f", {rec.precision_note}" if rec.precision_note else "")
                     + f"; detector {detector}"), err=True)
    _exit_for(stats)


def _exit_for(stats) -> None:
    """Outputs are complete and closed by now; a run ended by a signal still exits 128 + its number
    (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), as shells and supervisors expect."""
    if stats.signal:
        raise typer.Exit(128 + int(stats.signal))
