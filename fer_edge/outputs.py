"""The output policy of every command that writes files the user named.

- An output never replaces an input (`cam --source a.mp4 --output a.mp4` used to destroy the video).
- Two outputs of one command never share a name (`predict` used to write `a/photo.jpg`, `a/photo.png`
  and `b/photo.jpg` all to `photo_fer.png`).
- An existing file is replaced only with `--overwrite`; the check runs before any work starts.
- Files appear under their final name only when complete (`atomic_write_*`, `atomic_path`: a `.partial`
  file renamed).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from fer_edge.errors import UsageError


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path] = (), overwrite: bool = False,
                  option: str = "--output") -> None:
    """Refuse (UsageError, before any work) an output that is an input, two equal outputs, or an existing
    file without `overwrite`."""
    outs = [Path(o) for o in outputs if o is not None and str(o) != "-"]
    ins = [Path(i) for i in inputs if i is not None]
    for o in outs:
        for i in ins:
            if _same(o, i):
                raise UsageError(f"{option} {o} is also an input; it would be destroyed. Choose another name.")
    for k, o in enumerate(outs):
        for other in outs[k + 1:]:
            if _same(o, other):
                raise UsageError(f"two outputs are the same file {o}; give each its own name.")
    if not overwrite:
        existing = [o for o in outs if o.exists()]
        if existing:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise UsageError(f"{existing[0]} exists{more}; pass --overwrite to replace it, or choose another name.")


def check_output_folder(folder: Path, option: str = "--output") -> None:
    """Refuse (UsageError) a folder option that names an existing file, before anything is made in it:
    `mkdir(exist_ok=True)` would otherwise fail on it with a traceback."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: exists and is not a folder; name a folder, new or existing.")


def plan_annotated_outputs(files: list[Path], output: str | Path | None, overwrite: bool = False,
                           suffix: str = "_fer.png") -> list[Path | None]:
    """The annotated copy each input gets in the folder `output` (None each when no folder is given),
    checked by `check_outputs` and the folder made, before any work: `predict` and `explain` share it, so
    neither can write over an input or trip on an `--output` that is a file."""
    if not output:
        return [None] * len(files)
    out_dir = Path(output)
    check_output_folder(out_dir)
    targets: list[Path | None] = [out_dir / n for n in annotated_names(files, suffix)]
    check_outputs(targets, files, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    return targets


def annotated_names(files: list[Path], suffix: str = "_fer.png") -> list[str]:
    """Unique output names for `files`, one each: `<stem>_fer.png` when that is unique in the batch, else
    `<stem>_<ext>_fer.png`, else with the parent folders' names in front (`a_photo_jpg_fer.png`),
    else numbered. Deterministic for a given input list."""
    def candidates(f: Path):
        ext = f.suffix.lstrip(".").lower()
        yield f.stem + suffix
        yield f"{f.stem}_{ext}{suffix}"
        parts = [p for p in f.parent.parts if p not in ("/", ".", "..")]
        for depth in range(1, len(parts) + 1):
            yield "_".join(parts[-depth:] + [f"{f.stem}_{ext}"]) + suffix

    names: list[str | None] = [None] * len(files)
    pending = list(range(len(files)))
    gens = [candidates(f) for f in files]
    level_names = {i: next(gens[i]) for i in pending}
    while pending:
        counts: dict[str, int] = {}
        for i in pending:
            counts[level_names[i]] = counts.get(level_names[i], 0) + 1
        taken = {n for n in names if n}
        still = []
        for i in pending:
            n = level_names[i]
            if counts[n] == 1 and n not in taken:
                names[i] = n
            else:
                nxt = next(gens[i], None)
                if nxt is None:
                    k = 2
                    while f"{Path(n).stem}_{k}{suffix[suffix.rfind('.'):]}" in taken:
                        k += 1
                    names[i] = f"{Path(n).stem}_{k}{suffix[suffix.rfind('.'):]}"
                    taken.add(names[i])
                else:
                    level_names[i] = nxt
                    still.append(i)
        pending = still
    return [str(n) for n in names]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """For writers that want a file name (csv, matplotlib's savefig): yield a temporary path beside `path`
    with the same suffix (`NAME.PID.partial.EXT`, so a writer that picks its format from the suffix still
    does); renamed to `path` when the block succeeds, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
