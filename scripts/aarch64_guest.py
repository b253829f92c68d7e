#!/usr/bin/env python3
"""Per-image predictions of the bundled fer-edge models, for scripts/aarch64_check.sh.

The same file runs on the x86 host (the reference) and inside the emulated arm64 guest; the
check script compares the two JSON files with `compare`. Only the public runtime API is used:
images are read like the FER2013 loader reads them (cv2.imread + preprocess_face -> 48x48x1
uint8) and fed one at a time to `load_backend(model, backend).predict`, so every image also
gets a latency (in the guest: EMULATED, not a Raspberry Pi timing).

  aarch64_guest.py predict --data SLICE --out preds.json [--backends onnxruntime,litert]
  aarch64_guest.py frames --out DIR     (the bundled samples inside 640x480 frames, for predict)
  aarch64_guest.py compare x86.json arm64.json [--min-agreement 0.99]
  aarch64_guest.py agree preds.json     (one machine: each int8 file against the fp32 file of its backend,
                                         and each file across the two backends)
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

SUFFIX = {"onnxruntime": ".onnx", "litert": ".tflite"}


def slice_images(root: Path) -> list[tuple[str, str, Path]]:
    """-> [(id 'class/file', class, path)] in a fixed order (class folders, then file names)."""
    split = root / "test" if (root / "test").is_dir() else root
    out = []
    for cdir in sorted(p for p in split.iterdir() if p.is_dir()):
        for f in sorted(p for p in cdir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            out.append((f"{cdir.name}/{f.name}", cdir.name, f))
    return out


def bundled_models(backend: str) -> list[Path]:
    """Every bundled model file this backend can run (int8 default first; fp32 ones too if shipped)."""
    from fer_edge.runtime.recognizer import BUNDLED_DIR, BUNDLED_STEM

    files = sorted(BUNDLED_DIR.glob(f"*{SUFFIX[backend]}"))
    return sorted(files, key=lambda p: (p.name != f"{BUNDLED_STEM}_int8{SUFFIX[backend]}", p.name))


def cmd_predict(args) -> int:
    import cv2
    import numpy as np

    from fer_edge.preprocess import preprocess_face
    from fer_edge.runtime.backends import load_backend

    items = slice_images(Path(args.data))
    if not items:
        print(f"no images under {args.data}", file=sys.stderr)
        return 1
    x = np.stack([preprocess_face(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), (48, 48)) for _, _, p in items])
    from fer_edge.sysinfo import cpu_summary

    result = {"machine": platform.machine(), "cpu": cpu_summary(), "python": platform.python_version(),
              "ids": [i for i, _, _ in items], "classes": [c for _, c, _ in items], "models": {}}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        for model in bundled_models(backend):
            t0 = time.perf_counter()
            be = load_backend(model, backend=backend, threads=args.threads)
            load_s = time.perf_counter() - t0
            labels = list(be.spec.labels)
            be.predict(x[:1])  # warm-up (first call allocates)
            probs, ms = [], []
            for i in range(len(x)):
                t = time.perf_counter()
                p = be.predict(x[i:i + 1])
                ms.append((time.perf_counter() - t) * 1000)
                probs.append(np.asarray(p[0], np.float32))
            probs = np.stack(probs)
            top1 = probs.argmax(1)
            acc = float(np.mean([labels[k] == c for k, c in zip(top1, result["classes"])]))
            key = f"{backend}:{model.name}"
            result["models"][key] = {
                "backend": backend, "model": model.name, "version": be.version,
                "delegate": getattr(be, "delegate", None), "labels": labels, "load_s": round(load_s, 3),
                "top1": [labels[k] for k in top1], "probs": np.round(probs, 6).tolist(),
                "accuracy": round(acc, 4), "ms_median": round(statistics.median(ms), 3),
                "ms_mean": round(statistics.fmean(ms), 3), "ms_p90": round(sorted(ms)[int(0.9 * (len(ms) - 1))], 3),
            }
            print(f"{key}: n={len(x)} accuracy {acc:.4f}  per-image latency median {statistics.median(ms):.2f} ms "
                  f"(mean {statistics.fmean(ms):.2f}, load {load_s:.2f} s, {be.version})", flush=True)
    Path(args.out).write_text(json.dumps(result))
    return 0


def cmd_frames(args) -> int:
    """The bundled 48x48 samples are tight crops the face detector (rightly) does not find faces in, so
    predict also gets each sample upscaled into a 640x480 frame (as `cam --source demo` shows them:
    200 px face, replicated border, blurred-noise background). Made once on the host, shipped as PNG."""
    import cv2
    import numpy as np

    from fer_edge.runtime.recognizer import BUNDLED_DIR

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    W, H, face_px = 640, 480, 200
    bg = cv2.GaussianBlur(np.random.default_rng(0).integers(60, 200, (H, W), dtype=np.uint8), (0, 0), 8)
    pad = face_px // 5
    side = face_px + 2 * pad
    for f in sorted((BUNDLED_DIR / "samples").glob("*.png")):
        face = cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        frame = bg.copy()
        x, y = (W - side) // 2, (H - side) // 2
        frame[y:y + side, x:x + side] = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        cv2.imwrite(str(out / f"{f.stem}_in_640x480.png"), frame)
    return 0


def cmd_compare(args) -> int:
    import numpy as np

    ref, arm = (json.loads(Path(p).read_text()) for p in (args.reference, args.other))
    ok = True
    if ref["ids"] != arm["ids"]:
        print("FAIL: the two runs saw different image lists")
        return 1
    print(f"top-1 agreement {ref['machine']} vs {arm['machine']} on {len(ref['ids'])} PublicTest images "
          f"(need >= {args.min_agreement:.0%}):")
    keys = list(ref["models"])
    for key in sorted(set(keys) | set(arm["models"])):
        if key not in ref["models"] or key not in arm["models"]:
            where = "x86" if key not in ref["models"] else "aarch64"
            print(f"  {key:45s} MISSING on {where}")
            ok = False
            continue
        a, b = ref["models"][key], arm["models"][key]
        same = np.array(a["top1"]) == np.array(b["top1"])
        agree = float(same.mean())
        maxdiff = float(np.abs(np.array(a["probs"]) - np.array(b["probs"])).max())
        good = agree >= args.min_agreement
        ok &= good
        print(f"  {key:45s} {agree:7.2%} ({int(same.sum())}/{len(same)})  max |dprob| {maxdiff:.4f}  "
              f"acc x86 {a['accuracy']:.4f} / aarch64 {b['accuracy']:.4f}  {'OK' if good else 'FAIL'}")
        for i in np.flatnonzero(~same)[:5]:
            print(f"      differs: {ref['ids'][i]}: x86 {a['top1'][i]} vs aarch64 {b['top1'][i]}")
    print("guest per-image latency, batch 1 (EMULATED arm64 under qemu TCG: NOT a Raspberry Pi timing):")
    for key, m in arm["models"].items():
        print(f"  {key:45s} median {m['ms_median']:.2f} ms  mean {m['ms_mean']:.2f} ms  p90 {m['ms_p90']:.2f} ms"
              f"  (x86 host median {ref['models'].get(key, {}).get('ms_median', float('nan')):.2f} ms)")
    return 0 if ok else 1


def _pair(models: dict, a: str, b: str) -> str:
    import numpy as np

    x, y = models[a], models[b]
    same = np.array(x["top1"]) == np.array(y["top1"])
    maxdiff = float(np.abs(np.array(x["probs"]) - np.array(y["probs"])).max())
    return (f"  {a:40s} vs {b:40s} {same.mean():7.2%} ({int(same.sum())}/{len(same)})  max |dprob| {maxdiff:.4f}  "
            f"acc {x['accuracy']:.4f} / {y['accuracy']:.4f}")


def cmd_agree(args) -> int:
    """Answers on one machine: the int8 files against fp32 (the precision's own cost) and the two runtimes
    against each other (the same quantized graph, so any difference is the runtime's or the CPU's)."""
    run = json.loads(Path(args.preds).read_text())
    models = run["models"]
    print(f"top-1 agreement on {len(run['ids'])} PublicTest images, {run.get('cpu', run['machine'])}:")
    for key in models:
        backend, name = key.split(":", 1)
        fp32 = f"{backend}:{name.replace('_int8', '_fp32')}"  # a flip-TTA file has no fp32 twin
        if "_int8" in name and fp32 in models:
            print(_pair(models, key, fp32))
    for key in models:
        backend, name = key.split(":", 1)
        if backend == "onnxruntime":
            other = f"litert:{Path(name).stem}.tflite"
            if other in models:
                print(_pair(models, key, other))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--backends", default="onnxruntime,litert")
    p.add_argument("--threads", type=int, default=1)
    f = sub.add_parser("frames")
    f.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("reference")
    c.add_argument("other")
    c.add_argument("--min-agreement", type=float, default=0.99)
    a = sub.add_parser("agree")
    a.add_argument("preds")
    args = ap.parse_args()
    return {"predict": cmd_predict, "frames": cmd_frames, "compare": cmd_compare, "agree": cmd_agree}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
