"""The child side of runtime.guard: load one model file with one backend and run two small batches.

Run as `python -m fer_edge.runtime.probe BACKEND PATH`; exit 0 when the file loads and gives finite
scores of the right shape, 2 with an `error:` line when it is refused. A native crash kills only this
process, which is the point. Separate from guard.py so that guard (imported by the backend registry)
never imports the registry back.
"""
from __future__ import annotations

import sys
from pathlib import Path

from fer_edge.errors import FerEdgeError, ModelError


def probe(backend: str, path: str) -> int:
    import numpy as np

    from fer_edge.runtime.backends import backend_class

    try:
        b = backend_class(backend).load(Path(path))
        shape = tuple(b.spec.input_shape)
        for n in (1, 3):
            out = np.asarray(b.predict(np.full((n, *shape), 128, np.uint8)))
            if out.shape != (n, b.spec.num_classes) or not np.all(np.isfinite(out)):
                raise ModelError(f"{path}: the model returned {out.shape} non-finite or misshapen scores "
                                 f"for a batch of {n}; it is corrupt.")
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # any failure of the interpreter on this file: the file is bad
        first = (str(exc).splitlines() or [""])[0][:200]
        print(f"error: {path}: {backend} cannot run it ({exc.__class__.__name__}: {first}).", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1], sys.argv[2]))
