"""FER2013 readers (Kaggle folder layout and the original CSV), cache, splits.

Pure numpy + cv2 so the runtime side (evaluate/bench of .tflite/.onnx files) can read
data without TensorFlow. The tf.data pipeline lives in `fer_edge.training.pipeline`.
"""
from __future__ import annotations

import csv
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_edge.formats import IMAGE_SUFFIXES
from fer_edge.errors import DataError, did_you_mean
from fer_edge.labels import CSV_CODES, FER2013_LABELS, ClassMap
from fer_edge.preprocess import PREPROCESS_VERSION, preprocess_face

USAGES = ("Training", "PublicTest", "PrivateTest", "Test")  # Test = a test/ file of unknown usage
TRAIN, PUBLIC, PRIVATE, TEST_UNKNOWN = range(4)
IMAGE_SIZE = (48, 48)
#: The gate hold-out: a fixed, stratified 5 % of Training (by the 7 original labels, seed 2013) that
#: training never sees, and that export neither calibrates nor selects on: the export gate measures
#: quantized files there. Only carved when Training has at least HOLDOUT_MIN_TRAIN images.
SPLIT_NAMES = ("train", "val", "test", "holdout")
HOLDOUT_FRACTION = 0.05
HOLDOUT_SEED = 2013
HOLDOUT_MIN_TRAIN = 1000


@dataclass
class RawData:
    """Every decoded image of a source, with canonical label index and official usage."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int8 index into FER2013_LABELS
    usage: np.ndarray  # (N,) int8 index into USAGES
    fingerprint: str  # content_fingerprint(): the same data gives the same id on any machine
    source: str
    skipped: int = 0
    converted: int = 0
    problems: list[str] = field(default_factory=list)  # a few examples of skipped items


@dataclass
class Splits:
    """Arrays for one class mapping: x_* are (N, 48, 48, 1) uint8, y_* are output indices."""

    class_map: ClassMap
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    val_source: str
    test_source: str
    fingerprint: str
    source: str
    skipped: int = 0
    x_holdout: np.ndarray | None = None  # the gate hold-out (see HOLDOUT_FRACTION); empty when not carved
    y_holdout: np.ndarray | None = None
    holdout_source: str = "none"

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split '{name}'.{did_you_mean(name, SPLIT_NAMES)} Use {', '.join(SPLIT_NAMES)}.")
        x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
        if y is None:
            return np.zeros((0, *IMAGE_SIZE, 1), np.uint8), np.zeros(0, np.int64)
        return x, y

    def summary(self) -> dict:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "classes": self.class_map.to_dict(),
            "n_train": int(len(self.y_train)),
            "n_val": int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_holdout": int(len(self.y_holdout)) if self.y_holdout is not None else 0,
            "val_source": self.val_source,
            "test_source": self.test_source,
            "holdout_source": self.holdout_source,
            "skipped": self.skipped,
        }


def default_cache_dir() -> Path:
    return Path(os.environ.get("FER_EDGE_CACHE", Path.home() / ".cache" / "fer-edge"))


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# ----------------------------------------------------------------------------- listing
def _usage_of(path: Path, split_dir: str) -> int:
    stem = path.name
    for i, u in enumerate(USAGES[:3]):
        if stem.startswith(u + "_"):
            return i
    return TRAIN if split_dir == "train" else TEST_UNKNOWN


def _list_folder(root: Path, strict: bool) -> tuple[list[tuple[Path, int, int]], list[str]]:
    """-> [(file, label_idx, usage)], problems. Accepts ROOT/{train,test}/<class>/ or ROOT/<class>/."""
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    if "train" in subdirs or "test" in subdirs:
        split_dirs = [(name, subdirs[name]) for name in ("train", "test") if name in subdirs]
    elif subdirs and all(name in FER2013_LABELS for name in subdirs):
        split_dirs = [("test", root)]  # a single split folder, e.g. fer2013/test
    else:
        raise DataError(
            f"{root}: expected FER2013 in the Kaggle layout ROOT/train/<class>/*.jpg and ROOT/test/<class>/*.jpg, "
            f"or a fer2013.csv file; found folders: {', '.join(sorted(subdirs)) or 'none'}."
        )
    items: list[tuple[Path, int, int]] = []
    problems: list[str] = []
    for split_name, split_dir in split_dirs:
        class_dirs = [p for p in sorted(split_dir.iterdir()) if p.is_dir()]
        if not class_dirs:
            raise DataError(f"{split_dir}: no class folders (expected {', '.join(FER2013_LABELS)}).")
        for cdir in class_dirs:
            name = cdir.name.lower()
            if name not in FER2013_LABELS:
                raise DataError(
                    f"{cdir}: unknown class folder '{cdir.name}'.{did_you_mean(name, FER2013_LABELS)} "
                    f"FER2013 classes are: {', '.join(FER2013_LABELS)}."
                )
            label = FER2013_LABELS.index(name)
            files = sorted(p for p in cdir.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                msg = f"{cdir}: empty class folder"
                if strict:
                    raise DataError(msg + " (--strict).")
                problems.append(msg)
            for f in files:
                if f.suffix.lower() not in IMAGE_SUFFIXES:
                    problems.append(f"{f}: not an image file")
                    continue
                items.append((f, label, _usage_of(f, split_name)))
    return items, problems


def _fingerprint(parts: list[str]) -> str:
    """The cache key: paths, sizes and mtimes, cheap to compute before decoding anything. It changes with
    every copy of the data (new mtimes), so it names cache files and is never recorded as the data's id."""
    h = hashlib.sha1(f"v{PREPROCESS_VERSION}:{IMAGE_SIZE}".encode())
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


#: content fingerprints start with this; older runs and models recorded the cache key (40 hex digits)
CONTENT_PREFIX = "sha256:"


def content_fingerprint(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> str:
    """The data's id in run directories and model files: a digest of the decoded images, labels and
    official usage, in listing order. The same FER2013 gives the same id on every machine and every copy
    (where the cache key differs; the pixels are OpenCV's decoding of the files), so a model's `data_fingerprint` can be checked against a user's data
    and a resumed run can tell whether its data changed between slices."""
    h = hashlib.sha256(f"fer-edge data v{PREPROCESS_VERSION}:{IMAGE_SIZE}:{images.shape}".encode())
    for a, dtype in ((images, np.uint8), (labels, np.int8), (usage, np.int8)):
        h.update(np.ascontiguousarray(a, dtype).tobytes())
    return CONTENT_PREFIX + h.hexdigest()


def is_content_fingerprint(value: object) -> bool:
    """Whether a recorded fingerprint (a cache entry, config.json, a model's metadata) is a content one,
    comparable across machines; older records hold a per-copy cache key, which cannot tell."""
    return isinstance(value, str) and value.startswith(CONTENT_PREFIX) and len(value) == len(CONTENT_PREFIX) + 64


def _progress(total: int, description: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from rich.console import Console

    # stderr: stdout carries results (`evaluate --json -` must print nothing but the JSON)
    return Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=False, disable=total < 500, console=Console(stderr=True),
    )


def _decode_folder(items: list[tuple[Path, int, int]], root: Path, strict: bool, problems: list[str]) -> tuple:
    n = len(items)
    images = np.zeros((n, *IMAGE_SIZE), np.uint8)
    keep = np.ones(n, bool)
    converted = 0
    with _progress(n, f"decoding {n} images") as prog:
        task = prog.add_task("decode", total=n)
        for i, (f, _, _) in enumerate(items):
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is None or img.size == 0:
                msg = f"{f}: unreadable image"
                if strict:
                    raise DataError(msg + " (--strict).")
                problems.append(msg)
                keep[i] = False
            else:
                if img.shape[:2] != IMAGE_SIZE or img.ndim == 3 or img.dtype != np.uint8:
                    converted += 1
                images[i] = preprocess_face(img, IMAGE_SIZE)[:, :, 0]
            if i % 256 == 0 or i == n - 1:
                prog.update(task, completed=i + 1)
    labels = np.array([it[1] for it in items], np.int8)
    usage = np.array([it[2] for it in items], np.int8)
    return images[keep], labels[keep], usage[keep], converted


_CSV_MAX_LINE = 16_384  # a FER2013 row is ~7,000 characters (2,304 pixels); anything far longer is malformed


def _csv_rows(fh):
    """(line number, fields or an error message) for each line of a CSV opened in binary mode. Decoding
    and parsing are per line, so a non-UTF-8 byte, a BOM or a 1 MB field costs one row, not the file
    (FER2013 rows have no quoted newlines)."""
    for lineno, raw in enumerate(fh, start=1):
        if len(raw) > _CSV_MAX_LINE:
            yield lineno, f"line of {len(raw):,} bytes (limit {_CSV_MAX_LINE:,})"
            continue
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
            continue
        if lineno > 1 and line.startswith("\ufeff"):
            line = line[1:]
        if not line.strip():
            continue
        try:
            yield lineno, next(csv.reader([line]))
        except (csv.Error, StopIteration) as exc:
            yield lineno, f"not a CSV row ({exc})"


def _read_csv(path: Path, strict: bool) -> tuple:
    images, labels, usage, problems = [], [], [], []
    usage_idx = {u: i for i, u in enumerate(USAGES[:3])}
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}).") from None
    with fh:
        rows = _csv_rows(fh)
        _, header = next(rows, (0, None))
        if not isinstance(header, list) or [h.strip().lower() for h in header[:2]] != ["emotion", "pixels"]:
            raise DataError(f"{path}: not a fer2013.csv (expected header emotion,pixels,Usage; got {str(header)[:80]}).")
        has_usage = len(header) >= 3
        for lineno, row in rows:
            try:
                if isinstance(row, str):
                    raise ValueError(row)
                code = int(row[0])
                label = CSV_CODES[code]
                px = np.array(row[1].split(), dtype=np.int32)
                if px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
                    raise ValueError(f"{px.size} pixel values (need 2304 in 0..255)")
                u = usage_idx[row[2].strip()] if has_usage else TRAIN
            except (ValueError, KeyError, IndexError, OverflowError) as exc:
                msg = f"{path}:{lineno}: malformed row ({str(exc)[:120]})"
                if strict:
                    raise DataError(msg + " (--strict).") from None
                problems.append(msg)
                continue
            images.append(px.astype(np.uint8).reshape(48, 48))
            labels.append(FER2013_LABELS.index(label))
            usage.append(u)
    if not images:
        raise DataError(f"{path}: no valid rows.")
    return np.stack(images), np.array(labels, np.int8), np.array(usage, np.int8), problems


def load_raw(path: str | os.PathLike, strict: bool = False, cache_dir: str | os.PathLike | None = None,
             use_cache: bool = True) -> RawData:
    """Decode a FER2013 source once; later calls with unchanged files load the cached arrays."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or folder; pass --data pointing at FER2013 (folders or fer2013.csv).")
    if root.is_dir() and (root / "fer2013.csv").is_file() and not (root / "train").is_dir():
        root = root / "fer2013.csv"
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise DataError(f"{root}: not a folder or .csv file.")
        st = root.stat()
        fp = _fingerprint([str(root.resolve()), str(st.st_size), str(st.st_mtime_ns), f"strict={strict}"])
        items = None
    else:
        items, list_problems = _list_folder(root, strict)
        if not items:
            raise DataError(f"{root}: no image files found.")
        rels = [f"{p.relative_to(root)}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p, _, _ in items]
        fp = _fingerprint(rels + [f"strict={strict}"])
    cache_file = Path(cache_dir or default_cache_dir()) / f"fer2013-{fp[:20]}.npz"
    if use_cache and cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                problems = [str(p) for p in z["problems"]]
                images, labels, usage = z["images"], z["labels"], z["usage"]
                content = str(z["content"]) if "content" in z.files else ""
                raw = RawData(images, labels, usage, content, str(root), int(z["skipped"]),
                              int(z["converted"]), problems)
            if is_content_fingerprint(content):
                return raw
            # a cache written before content fingerprints (or a damaged entry): computed once (about
            # 0.3 s for FER2013) and written back, so the next load reads it
            raw.fingerprint = content_fingerprint(images, labels, usage)
            _save_cache(cache_file, raw)
            return raw
        except (OSError, ValueError, KeyError):
            _warn(f"cache {cache_file} unreadable; decoding again")
    if items is None:
        images, labels, usage, problems = _read_csv(root, strict)
        converted = 0
    else:
        problems = list(list_problems)
        images, labels, usage, converted = _decode_folder(items, root, strict, problems)
    if len(images) == 0:
        raise DataError(f"{root}: no readable images.")
    skipped = sum(1 for p in problems if "empty class folder" not in p)
    raw = RawData(images, labels, usage, content_fingerprint(images, labels, usage), str(root), skipped,
                  converted, problems)
    if problems:
        _warn(f"{root}: skipped {skipped} item(s), e.g. {problems[0]} (use --strict to stop on these)")
    if use_cache:
        _save_cache(cache_file, raw)
    return raw


def _save_cache(cache_file: Path, raw: RawData) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".npz.partial")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, images=raw.images, labels=raw.labels, usage=raw.usage, skipped=raw.skipped,
                     converted=raw.converted, problems=np.array(raw.problems[:50], dtype=str),
                     content=np.array(raw.fingerprint))
        os.replace(tmp, cache_file)
    except OSError as exc:  # a cache is an optimisation, never a failure
        _warn(f"could not write cache {cache_file}: {exc}")


def stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask selecting `fraction` of each class (seeded): the validation hold-out."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(len(idx) * fraction))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
            mask[rng.choice(idx, k, replace=False)] = True
    return mask


def stratified_sample(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of about n items with class proportions kept (every class at least once)."""
    if n >= len(y):
        return np.arange(len(y))
    mask = stratified_holdout(y, n / len(y), seed)
    return np.flatnonzero(mask)


def holdout_mask(raw: RawData) -> np.ndarray:
    """The gate hold-out over all of `raw` (fixed by the 7 original labels, whatever the class mapping)."""
    mask = np.zeros(len(raw.labels), bool)
    train = np.flatnonzero(raw.usage == TRAIN)
    if len(train) >= HOLDOUT_MIN_TRAIN:
        mask[train[stratified_holdout(raw.labels[train], HOLDOUT_FRACTION, HOLDOUT_SEED)]] = True
    return mask


def make_splits(raw: RawData, class_map: ClassMap, val_split: str = "auto", seed: int = 42) -> Splits:
    """Apply the class mapping, then split: val = PublicTest when present (or a hold-out),
    test = PrivateTest, else the test/ folder, else PublicTest (reported as such); the gate
    hold-out (`holdout_mask`) is taken out of Training first."""
    lut = np.array(class_map.lookup_table(), np.int16)
    y_all = lut[raw.labels.astype(np.int16)]
    keep = y_all >= 0
    gate = holdout_mask(raw)[keep]
    x, y, usage = raw.images[keep][..., None], y_all[keep].astype(np.int64), raw.usage[keep]
    usage = np.where(gate, -1, usage)  # neither train nor any other split
    present = [c for c in range(class_map.num_classes) if np.any(y == c)]
    if len(present) < class_map.num_classes:
        missing = [class_map.labels[c] for c in range(class_map.num_classes) if c not in present]
        raise DataError(f"{raw.source}: no images for class(es) {', '.join(missing)}; check --classes or the data.")
    train = usage == TRAIN
    val_split = str(val_split).strip().lower()
    if val_split in ("auto", "publictest") and np.any(usage == PUBLIC) and np.any(train):
        val = usage == PUBLIC
        val_source = "PublicTest"
    elif val_split == "publictest":
        raise DataError(f"{raw.source}: no PublicTest images to validate on; use --val-split 0.1 for a hold-out.")
    else:
        try:
            frac = 0.1 if val_split == "auto" else float(val_split)
        except ValueError:
            raise DataError(f"--val-split must be auto, publictest or a fraction like 0.1, got '{val_split}'.") from None
        if not 0 < frac < 1:
            raise DataError(f"--val-split fraction must be between 0 and 1, got {frac}.")
        hold = np.zeros(len(y), bool)
        if np.any(train):
            hold[np.flatnonzero(train)[stratified_holdout(y[train], frac, seed)]] = True
        val, train = hold, train & ~hold
        val_source = f"hold-out {frac:.0%} of Training (seed {seed})"
    if np.any(usage == PRIVATE):
        test, test_source = usage == PRIVATE, "PrivateTest"
    elif np.any(usage == TEST_UNKNOWN):
        test, test_source = usage == TEST_UNKNOWN, "test/ folder"
    elif np.any(usage == PUBLIC):
        test, test_source = usage == PUBLIC, "PublicTest (no PrivateTest in this data)"
    else:
        test, test_source = np.zeros(len(y), bool), "none"
    hold_source = (f"gate hold-out: {HOLDOUT_FRACTION:.0%} of Training (stratified, seed {HOLDOUT_SEED}; fer-edge "
                   "trains, calibrates and selects without it)") if gate.any() else "none"
    return Splits(class_map, x[train], y[train], x[val], y[val], x[test], y[test], val_source, test_source,
                  raw.fingerprint, raw.source, raw.skipped, x[gate], y[gate], hold_source)


def load_splits(path: str | os.PathLike, class_map: ClassMap, val_split: str = "auto", seed: int = 42,
                strict: bool = False, cache_dir: str | os.PathLike | None = None) -> Splits:
    return make_splits(load_raw(path, strict=strict, cache_dir=cache_dir), class_map, val_split, seed)


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """'balanced' weights n / (k * count_c), as scikit-learn computes them."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    return {i: float(len(y) / (num_classes * c)) for i, c in enumerate(counts)}
