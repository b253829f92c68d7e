"""FORMATS: the one table of export formats (after Ultralytics' export_formats()), at the ground floor
(imports only `errors`) so that the runtime, the benchmark and export all read it downward.

The CLI's --format/--quantize choices, validation, backend selection from a file suffix and
the benchmark all read this table. Light: exporters and metadata embedders are named by dotted path,
imported on use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fer_edge.errors import unknown


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    quantizations: tuple[str, ...]  # "none" = float32 as trained
    exporter: str | None  # "module:function" or None (source format): writes the graph, returns the file's spec
    backends: tuple[str, ...]  # runtime backends able to run it, preferred first
    embedder: str | None = None  # "module:function" (path, spec) -> spec: embeds the spec, replacing any there
    options: tuple[str, ...] = ()  # export settings the exporter also takes, by keyword (e.g. int8_method)


FORMATS: tuple[Format, ...] = (
    Format("keras", ".keras", ("none",), None, ("keras",)),
    Format("tflite", ".tflite", ("none", "fp16", "dynamic", "int8"), "fer_edge.export.tflite:export_tflite",
           ("litert", "tflite-runtime", "tensorflow"), "fer_edge.export.metadata:embed_tflite_spec"),
    Format("onnx", ".onnx", ("none", "dynamic", "int8"), "fer_edge.export.onnx:export_onnx", ("onnxruntime",),
           "fer_edge.export.metadata:embed_onnx_spec", ("int8_method",)),
)

QUANTIZATIONS: tuple[str, ...] = ("none", "fp16", "dynamic", "int8")

#: runtime backends: name -> (implementation "module:Class", pip hint when its library is missing, the
#: library's import name). Data only: CLI choices and help, the benchmark and `runtime.backends` read it.
BACKENDS: dict[str, tuple[str, str, str]] = {
    "onnxruntime": ("fer_edge.runtime.backends.onnxruntime:OnnxRuntimeBackend", "pip install onnxruntime",
                    "onnxruntime"),
    "litert": ("fer_edge.runtime.backends.litert:LiteRTBackend", 'pip install "fer-edge[tflite]"', "ai_edge_litert"),
    "tflite-runtime": ("fer_edge.runtime.backends.tflite_runtime:TFLiteRuntimeBackend",
                       'pip install "fer-edge[tflite-legacy]" (needs numpy<2)', "tflite_runtime"),
    "tensorflow": ("fer_edge.training.tensorflow_lite:TensorFlowLiteBackend", 'pip install "fer-edge[train]"',
                   "tensorflow"),
    "keras": ("fer_edge.training.keras_backend:KerasBackend", 'pip install "fer-edge[train]"', "keras"),
}

#: image files that predict/explain and the folder data loader read
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})


def load_ref(ref: str):
    """The object a table entry names by dotted path ("module:attr": an exporter, an embedder, a backend
    class), imported only now: the tables stay light."""
    from importlib import import_module

    mod, _, attr = ref.partition(":")
    return getattr(import_module(mod), attr)


def backend_names(with_keras: bool = True) -> str:
    """'a | b | c' for help texts."""
    return " | ".join(b for b in BACKENDS if with_keras or b != "keras")
EXPORT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS if f.exporter)


def get_format(name: str) -> Format:
    for f in FORMATS:
        if f.name == name:
            return f
    raise unknown("format", name, [f.name for f in FORMATS])


def format_for_path(path: str | Path) -> Format:
    suffix = Path(path).suffix.lower()
    for f in FORMATS:
        if f.suffix == suffix:
            return f
    raise unknown("model file type", suffix or str(path), [f.suffix for f in FORMATS])


def expand(formats: str, quantize: str) -> list[tuple[Format, str]]:
    """'--format all --quantize all' -> every supported (format, quantization) pair, validated."""
    fnames = list(EXPORT_FORMATS) if formats == "all" else [s.strip() for s in formats.split(",") if s.strip()]
    qnames = list(QUANTIZATIONS) if quantize == "all" else [s.strip() for s in quantize.split(",") if s.strip()]
    pairs = []
    for fn in fnames:
        fmt = get_format(fn)
        if not fmt.exporter:
            raise unknown("export format", fn, EXPORT_FORMATS)
        for q in qnames:
            if q not in QUANTIZATIONS:
                raise unknown("quantization", q, QUANTIZATIONS)
            if q in fmt.quantizations:
                pairs.append((fmt, q))
            elif quantize != "all":
                raise unknown(f"quantization for {fmt.name}", q, fmt.quantizations)
    return pairs


def artifact_name(stem: str, fmt: Format, quantization: str) -> str:
    q = "fp32" if quantization == "none" else quantization
    return f"{stem}_{q}{fmt.suffix}"
