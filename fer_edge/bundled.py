"""The bundled models: where they live and their names (ground floor: no heavy imports, so the CLI's
help can read the table without loading a runtime)."""
from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "models"
BUNDLED_STEM = "fer_edge_default"
#: the bundled models, by the name `--model` accepts (the file stem): one table, read by the CLI help,
#: the recognizer and the slow accuracy test; scripts/make_bundle.sh writes both. Same weights;
#: `fer_edge_flip` averages the face and its mirror image inside the graph (export --tta flip): more
#: accurate, at twice the MACs (README, "The bundled model", has both files' numbers).
BUNDLED_MODELS = {
    BUNDLED_STEM: "single crop, the default",
    "fer_edge_flip": "flip TTA: face and mirror image averaged in the graph, 2x MACs",
}


def bundled_names() -> str:
    """'fer_edge_default | fer_edge_flip' for help texts."""
    return " | ".join(BUNDLED_MODELS)
