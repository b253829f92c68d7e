"""Defaults shared by the CLI and the library, in a module light enough for `fer-edge --help`."""

#: what `fer-edge cam` runs with unless told otherwise (the benchmark's end-to-end row uses the same):
#: the "cam" detector profile (runtime/detect.py), full-frame detection every 2nd frame with tracked
#: faces re-found near their last box (rolled +-15 degrees when upright fails) in between, a lost
#: established face kept for up to 3 frames, EMA smoothing of probabilities. Chosen for frame recall
#: first: >= 99 % of frames of one-face 640x480 videos with 60-240 px faces (fer_edge.detect_bench,
#: `fer-edge bench` prints it), then speed; `--detector fast` is the cheaper, lower-recall option.
CAM_DEFAULTS = {"smoothing": 0.5, "detect_every": 2, "detector_config": "cam"}
