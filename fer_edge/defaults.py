"""Defaults shared by the CLI and the library, in a module light enough for `fer-edge --help`."""

#: what `fer-edge cam` runs with unless told otherwise (the benchmark's end-to-end row uses the same):
#: EMA smoothing of probabilities, full-frame detection every 2nd frame (tracked faces re-found nearby
#: in between). Measured on the 2-core host with `fer-edge cam --source demo`: 169 -> 230 frames/s
#: for 1 -> 2 (benchmarks/README.md, section 3).
CAM_DEFAULTS = {"smoothing": 0.5, "detect_every": 2}
