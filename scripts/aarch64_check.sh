#!/usr/bin/env bash
# aarch64 (Raspberry Pi OS 64-bit class) check of fer-edge, in a full-system emulated Debian arm64.
#
# Boots Debian bookworm arm64 (the base of Raspberry Pi OS 64-bit: python 3.11, glibc 2.36) under
# qemu-system-aarch64 (-M virt -cpu cortex-a72, the Pi 4's core), installs fer-edge from a wheel
# built from this checkout plus aarch64 PyPI wheels of its dependencies, and runs in the guest:
#   fer-edge predict on the bundled samples (litert and onnxruntime), fer-edge evaluate on a
#   stratified PublicTest slice with both backends, per-image predictions of the bundled models
#   (scripts/aarch64_guest.py, compared with the same script on this x86 host: top-1 agreement
#   must be >= 99 %), and fer-edge cam --source demo --no-display --max-frames 50.
# Full-system emulation on purpose: user-mode qemu crashes onnxruntime and LiteRT at load.
# Emulated timings are NOT Raspberry Pi timings (TCG runs arm64 code 10-50x slower than a Pi).
#
# Only Debian packages (qemu-system-arm, debootstrap, cpio, a Debian arm64 kernel .deb) and PyPI
# wheels are used. Downloads, the debootstrapped rootfs and the set-up guest (second stage done,
# venv with the dependency wheels) are cached in .aarch64/ (git-ignored): the first ("cold") run
# builds them, later ("warm") runs only rebuild the fer-edge wheel and boot once.
#
# usage: sudo scripts/aarch64_check.sh [--cpu cortex-a72|cortex-a76] [--per-class N] [--smp N] [--mem SIZE]
#                                       [--timeout MIN] [--rebuild]
#   env: FER2013=dir (default ../shared/fer2013), AARCH64_CACHE=dir (default .aarch64), PYTHON=python3
# exit: 0 all checks passed; 1 a check failed; 2 a missing prerequisite (one-line reason).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${AARCH64_CACHE:-$REPO/.aarch64}
DATA=${FER2013:-$REPO/../shared/fer2013}
PYTHON=${PYTHON:-python3}
SUITE=bookworm     # Raspberry Pi OS 64-bit is bookworm-based
GUEST_PY=3.11      # bookworm's python3
PER_CLASS=30
SMP=1
MEM=4G
CPU=cortex-a72     # the Raspberry Pi 4's core; cortex-a76 = the Pi 5's (adds dotprod, fp16, lrcpc, ...)
TIMEOUT_MIN=150
REBUILD=0
MIN_AGREEMENT=0.99
RESULTS_OFFSET_MB=6144   # results tar lives at this offset of the scratch disk (the base rootfs tar at 0)

while [ $# -gt 0 ]; do
  case "$1" in
    --per-class) PER_CLASS=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --cpu) CPU=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --timeout) TIMEOUT_MIN=$2; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

T_START=$(date +%s)
log() { echo "[aarch64 $(date +%H:%M:%S) +$(( $(date +%s) - T_START ))s] $*"; }
need() { echo "aarch64_check: missing prerequisite: $*" >&2; exit 2; }
fail() { echo "aarch64_check: FAILED: $*" >&2; exit 1; }
NICE="nice -n 10"

# ------------------------------------------------------------------ prerequisites
[ "$(id -u)" = 0 ] || need "must run as root (debootstrap, device nodes and apt-get need it): sudo $0"
[ -d "$DATA/test" ] || need "FER2013 test/ folder not found at $DATA (set FER2013=dir)"
missing_pkgs=()
command -v qemu-system-aarch64 >/dev/null || missing_pkgs+=(qemu-system-arm)
command -v debootstrap >/dev/null || missing_pkgs+=(debootstrap)
command -v cpio >/dev/null || missing_pkgs+=(cpio)
command -v dpkg-deb >/dev/null || missing_pkgs+=(dpkg)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || need "no apt-get to install ${missing_pkgs[*]} (needs a Debian host)"
  log "installing Debian packages: ${missing_pkgs[*]}"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"; } \
    >"${TMPDIR:-/tmp}/aarch64_apt.log" 2>&1 || need "apt-get install ${missing_pkgs[*]} failed (see ${TMPDIR:-/tmp}/aarch64_apt.log)"
fi
for c in qemu-system-aarch64 debootstrap cpio dpkg-deb; do command -v $c >/dev/null || need "$c not found after apt-get"; done
$PYTHON -c "import numpy, cv2, onnxruntime, ai_edge_litert, typer, rich" 2>/dev/null \
  || need "the x86 reference needs $PYTHON with numpy, opencv, onnxruntime, ai-edge-litert, typer, rich (pip install -e '.[tflite]')"
$PYTHON -m pip --version >/dev/null 2>&1 || need "$PYTHON -m pip is needed to build the wheel and download aarch64 wheels"

mkdir -p "$CACHE"
WORK=$CACHE/run
rm -rf "$WORK"; mkdir -p "$WORK"

# ------------------------------------------------------------------ the source: exactly this working tree
log "copying the working tree (tracked + untracked, not ignored) and building the fer-edge wheel"
SRC=$WORK/src; mkdir -p "$SRC"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -C "$SRC" -xf -
  GIT_REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
else
  tar -C "$REPO" --exclude=./.aarch64 --exclude=./build --exclude='*.egg-info' -cf - . | tar -C "$SRC" -xf -
  GIT_REV="(no git)"
fi
(cd "$SRC" && $NICE $PYTHON -m pip wheel -q --no-deps -w "$WORK/dist" . >"$WORK/wheel.log" 2>&1) \
  || { tail -20 "$WORK/wheel.log"; fail "pip wheel of the checkout failed"; }
WHEEL=$(ls "$WORK"/dist/fer_edge-*.whl)
log "built $(basename "$WHEEL") from $GIT_REV"

# ------------------------------------------------------------------ aarch64 wheels of the dependencies
PLATFORMS=(--platform manylinux2014_aarch64)
for m in $(seq 17 36); do PLATFORMS+=(--platform manylinux_2_${m}_aarch64); done   # bookworm: glibc 2.36
log "downloading aarch64 cp${GUEST_PY/./} wheels of the dependencies (pip download, PyPI)"
rm -rf "$CACHE/wheels.new"
if $NICE $PYTHON -m pip download -q --only-binary=:all: "${PLATFORMS[@]}" --python-version $GUEST_PY --implementation cp \
     -d "$CACHE/wheels.new" "$WHEEL[tflite]" >"$WORK/download.log" 2>&1; then
  rm -f "$CACHE"/wheels.new/fer_edge-*.whl
  rm -rf "$CACHE/wheels"; mv "$CACHE/wheels.new" "$CACHE/wheels"
elif [ -d "$CACHE/wheels" ]; then
  log "WARNING: pip download failed (offline?); reusing the cached wheels (see $WORK/download.log)"
else
  tail -5 "$WORK/download.log" >&2; need "cannot download aarch64 wheels from PyPI (see $WORK/download.log)"
fi
WHEELS_KEY=$( (ls "$CACHE/wheels"; echo "$SUITE $GUEST_PY v1") | sha256sum | cut -c1-16)
log "dependency wheels: $(ls "$CACHE/wheels" | sed 's/-py.*\|-cp.*//' | tr '\n' ' ')"

# ------------------------------------------------------------------ Debian arm64 kernel (+ 2 virtio modules)
KDIR=$CACHE/kernel
if [ ! -s "$KDIR/vmlinuz" ] || [ ! -s "$KDIR/virtio_blk.ko" ]; then
  log "fetching a Debian arm64 kernel package (apt-get download)"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -q >"$WORK/apt-update.log" 2>&1 || true
  KPKG=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2}' | head -1 || true)
  [ -n "$KPKG" ] || need "apt cannot see linux-image-arm64:arm64 (dpkg --add-architecture arm64 && apt-get update failed?)"
  rm -rf "$KDIR"; mkdir -p "$KDIR/deb"; chmod 777 "$KDIR/deb"
  (cd "$KDIR/deb" && apt-get download -q "${KPKG%:arm64}:arm64" >"$WORK/kernel-download.log" 2>&1) \
    || need "apt-get download $KPKG failed (see $WORK/kernel-download.log)"
  dpkg-deb -x "$KDIR"/deb/*.deb "$KDIR/x"
  cp "$KDIR"/x/boot/vmlinuz-* "$KDIR/vmlinuz"
  find "$KDIR/x/lib/modules" \( -name 'virtio_mmio.ko*' -o -name 'virtio_blk.ko*' \) -exec cp {} "$KDIR/" \;
  for z in "$KDIR"/*.ko.xz; do [ -e "$z" ] && xz -d "$z"; done      # newer Debian kernels compress modules
  for z in "$KDIR"/*.ko.zst; do [ -e "$z" ] && zstd -q -d --rm "$z"; done
  basename "$KDIR"/x/boot/vmlinuz-* | sed 's/^vmlinuz-//' >"$KDIR/version"
  rm -rf "$KDIR/x" "$KDIR/deb"
  [ -s "$KDIR/virtio_blk.ko" ] && [ -s "$KDIR/virtio_mmio.ko" ] || fail "kernel package lacks virtio_blk/virtio_mmio modules"
fi
log "kernel: Debian $(cat "$KDIR/version")"

# ------------------------------------------------------------------ the PublicTest slice + x86 reference
log "slice: first $PER_CLASS PublicTest images (sorted names) of each class from $DATA/test"
SLICE=$WORK/slice
for d in "$DATA"/test/*/; do
  c=$(basename "$d"); mkdir -p "$SLICE/test/$c"
  (cd "$d" && ls | LC_ALL=C sort | awk -v n="$PER_CLASS" '/^PublicTest_/ && k++ < n' | while read -r f; do cp "$f" "$SLICE/test/$c/"; done)
done
N_SLICE=$(find "$SLICE" -type f | wc -l)
log "x86 reference: per-image predictions on this host ($(uname -m)) with the same driver"
PYTHONPATH=$SRC $NICE $PYTHON "$SRC/scripts/aarch64_guest.py" predict --data "$SLICE" --out "$WORK/x86.json" 2>&1 \
  | grep -v 'XNNPACK delegate' || fail "x86 reference run failed"
PYTHONPATH=$SRC $PYTHON "$SRC/scripts/aarch64_guest.py" frames --out "$WORK/frames" || fail "making the sample frames failed"
for b in litert onnxruntime; do   # fer-edge predict on the bundled samples (+ in frames), for the faces-per-image comparison
  (cd "$WORK" && PYTHONPATH=$SRC $NICE $PYTHON -m fer_edge predict "$SRC"/fer_edge/models/samples/*.png "$WORK"/frames/*.png --backend $b --json \
     >"$WORK/x86_predict_$b.json" 2>"$WORK/x86_predict_$b.err") || log "WARNING: x86 fer-edge predict --backend $b failed"
done

# ------------------------------------------------------------------ the guest rootfs
BASE_CPIO=$CACHE/base.cpio
FOREIGN=$CACHE/foreign
[ "$REBUILD" = 1 ] && rm -rf "$BASE_CPIO" "$CACHE/base.key" "$FOREIGN" "$CACHE/foreign.cpio"
MODE=warm
if [ ! -s "$BASE_CPIO" ] || [ "$(cat "$CACHE/base.key" 2>/dev/null)" != "$WHEELS_KEY" ]; then
  MODE=cold
  if [ ! -e "$FOREIGN/.done" ]; then
    MIRROR=$(grep -rhoE '^(deb|URIs:)[^#]*https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -oE 'https?://[^ ]+' | grep -v security | head -1 || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    log "debootstrap --foreign arm64 $SUITE minbase + python3 python3-venv kmod from $MIRROR"
    rm -rf "$FOREIGN" "$CACHE/foreign.cpio"
    $NICE debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,python3-venv,kmod \
      "$SUITE" "$FOREIGN" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -5 "$WORK/debootstrap.log" >&2; need "debootstrap --foreign failed (mirror $MIRROR reachable?), see $WORK/debootstrap.log"; }
    # the first stage leaves /proc as a symlink to the host's /proc: make it a mount point again
    if [ -L "$FOREIGN/proc" ]; then rm -f "$FOREIGN/proc"; mkdir -p "$FOREIGN/proc"; fi
    touch "$FOREIGN/.done"
  fi
  if [ ! -s "$CACHE/foreign.cpio" ]; then
    (cd "$FOREIGN" && find . ! -name .done | LC_ALL=C sort | $NICE cpio -o -H newc --quiet) >"$CACHE/foreign.cpio.tmp"
    mv "$CACHE/foreign.cpio.tmp" "$CACHE/foreign.cpio"
  fi
  log "cold run: the guest will do debootstrap's second stage and install the wheels (slow: tens of minutes)"
else
  log "warm run: reusing the set-up guest rootfs ($BASE_CPIO)"
fi

# per-run overlay: /init, the run script, the fer-edge wheel, the slice, the driver, device nodes
OV=$WORK/overlay
mkdir -p "$OV"/{dev,proc,sys,tmp,run,results,opt/fer/dist,opt/fer/modules}
chmod 1777 "$OV/tmp"; chmod 755 "$OV" "$OV"/{dev,proc,sys,run,opt}
mknod -m 600 "$OV/dev/console" c 5 1; mknod -m 666 "$OV/dev/null" c 1 3
cp "$WHEEL" "$OV/opt/fer/dist/"
cp -r "$SLICE" "$OV/opt/fer/slice"
cp -r "$WORK/frames" "$OV/opt/fer/frames"
cp "$SRC/scripts/aarch64_guest.py" "$OV/opt/fer/"
cp "$KDIR"/virtio_*.ko "$OV/opt/fer/modules/"
[ "$MODE" = cold ] && cp -r "$CACHE/wheels" "$OV/opt/wheels"
echo "$RESULTS_OFFSET_MB" >"$OV/opt/fer/results_offset_mb"

cat >"$OV/init" <<'EOF'
#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb COLUMNS=150
mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/sh /opt/fer/run.sh
echo "@@AARCH64 GUEST-EXIT rc=$?"
sync
mount -t proc proc /proc 2>/dev/null
echo 1 >/proc/sys/kernel/sysrq 2>/dev/null
echo o >/proc/sysrq-trigger
sleep 30
EOF
chmod 755 "$OV/init"

cat >"$OV/opt/fer/run.sh" <<'EOF'
# runs as PID 1's child in the emulated arm64 guest; results go to /results and onto /dev/vda
T0=$(date +%s)
step() { echo "@@AARCH64 STEP $* (guest t=$(( $(date +%s) - T0 ))s)"; }
rc() { echo "$1 $2" >>/results/status.txt; [ "$2" = 0 ] || echo "@@AARCH64 STEP-FAILED $1 rc=$2"; }
if [ -d /debootstrap ]; then
  step "debootstrap --second-stage"
  /debootstrap/debootstrap --second-stage >/tmp/second-stage.log 2>&1
  r=$?; tail -3 /tmp/second-stage.log
  if [ $r != 0 ]; then tail -40 /debootstrap/debootstrap.log; rc second-stage $r; exit 1; fi
fi
mount -t proc proc /proc 2>/dev/null; mount -t sysfs sysfs /sys 2>/dev/null
insmod /opt/fer/modules/virtio_mmio.ko; insmod /opt/fer/modules/virtio_blk.ko
i=0; while [ ! -b /dev/vda ] && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
[ -b /dev/vda ] || echo "@@AARCH64 WARNING no /dev/vda: results cannot be handed back"
if [ ! -x /opt/venv/bin/python ]; then
  step "python3 -m venv /opt/venv + pip install of the aarch64 dependency wheels"
  python3 -m venv /opt/venv || { rc venv 1; exit 1; }
  /opt/venv/bin/pip install -q --no-index --no-cache-dir --disable-pip-version-check /opt/wheels/*.whl
  r=$?; rc deps-install $r; [ $r = 0 ] || exit 1
  step "saving the set-up rootfs to /dev/vda (host caches it)"
  (cd / && tar --one-file-system -cf /dev/vda --exclude=./opt/fer --exclude=./opt/wheels --exclude=./results \
     --exclude=./init --exclude=./tmp/second-stage.log .)
  rc base-save $?
  sync
fi
export PATH=/opt/venv/bin:$PATH
step "environment"
echo "uname -m: $(uname -m)"
echo "uname -a: $(uname -a)"
echo "os: $(. /etc/os-release; echo "$PRETTY_NAME"), debian_version $(cat /etc/debian_version), glibc $(ldd --version | head -1 | awk '{print $NF}')"
grep -m1 '^Features' /proc/cpuinfo
grep -m1 '^CPU part' /proc/cpuinfo
echo "cpus: $(nproc), mem: $(awk '/MemTotal/{print int($2/1024)" MiB"}' /proc/meminfo)"
echo "python: $(python --version 2>&1) ($(command -v python))"
step "pip install fer-edge from its wheel (offline, deps from the aarch64 wheels)"
pip install -q --no-index --no-cache-dir --disable-pip-version-check "$(ls /opt/fer/dist/fer_edge-*.whl)[tflite]"
rc fer-edge-install $?
pip check; rc pip-check $?
python - <<'PY' | tee /results/versions.txt
import importlib.metadata as md
for d in ("fer-edge", "numpy", "opencv-python-headless", "onnxruntime", "ai-edge-litert", "typer", "rich"):
    try:
        print(f"{d}=={md.version(d)}")
    except md.PackageNotFoundError:
        print(f"{d} MISSING")
PY
M=$(python -c 'import fer_edge, pathlib; print(pathlib.Path(fer_edge.__file__).parent / "models")')
ls "$M"
step "fer-edge predict on the bundled samples and on them in 640x480 frames (default backend = litert)"
fer-edge predict "$M"/samples/*.png /opt/fer/frames/*.png; rc predict-text $?
fer-edge predict "$M"/samples/*.png /opt/fer/frames/*.png --backend litert --json >/results/predict_litert.json; rc predict-litert $?
step "fer-edge predict on the same images --backend onnxruntime"
fer-edge predict "$M"/samples/*.png /opt/fer/frames/*.png --backend onnxruntime --json >/results/predict_onnxruntime.json
rc predict-onnxruntime $?
for b in onnxruntime litert; do
  case $b in onnxruntime) f=fer_edge_default_int8.onnx ;; litert) f=fer_edge_default_int8.tflite ;; esac
  step "fer-edge evaluate $f --backend $b on the PublicTest slice"
  fer-edge evaluate "$M/$f" --data /opt/fer/slice --split test --backend $b --json /results/evaluate_$b.json
  rc evaluate-$b $?
done
step "per-image predictions (scripts/aarch64_guest.py, batch 1, threads 1)"
python /opt/fer/aarch64_guest.py predict --data /opt/fer/slice --out /results/aarch64.json; rc per-image $?
step "fer-edge cam --source demo --no-display --max-frames 50"
fer-edge cam --source demo --no-display --max-frames 50 --json >/results/cam.json; rc cam $?
cat /results/cam.json
step "done; handing results back"
uname -m >/results/uname_m.txt; grep -m1 '^Features' /proc/cpuinfo >/results/features.txt
python --version >/results/python.txt 2>&1; uname -r >/results/kernel.txt
if [ -b /dev/vda ]; then
  tar -C /results -cf /tmp/results.tar . && dd if=/tmp/results.tar of=/dev/vda bs=1M seek=$(cat /opt/fer/results_offset_mb) conv=notrunc,fsync 2>/dev/null
  sync
fi
echo "@@AARCH64 STATUS"; cat /results/status.txt
grep -qv ' 0$' /results/status.txt && exit 1
exit 0
EOF

log "packing the initramfs ($MODE)"
(cd "$OV" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$WORK/overlay.cpio"
if [ "$MODE" = cold ]; then LOWER=$CACHE/foreign.cpio; else LOWER=$BASE_CPIO; fi
cat "$LOWER" "$WORK/overlay.cpio" >"$WORK/initrd.cpio"; rm -f "$WORK/overlay.cpio"
DISK=$WORK/disk.img
rm -f "$DISK"; truncate -s $(( RESULTS_OFFSET_MB + 512 ))M "$DISK"

# ------------------------------------------------------------------ boot
CONSOLE=$WORK/console.log
log "booting qemu-system-aarch64 -M virt -cpu $CPU -smp $SMP -m $MEM (TCG, nice 10; timeout ${TIMEOUT_MIN} min); console -> $CONSOLE"
T_BOOT=$(date +%s)
set +e
timeout --foreground $(( TIMEOUT_MIN * 60 )) $NICE qemu-system-aarch64 -M virt -cpu "$CPU" -smp "$SMP" -m "$MEM" \
  -accel tcg -display none -monitor none -serial stdio -no-reboot -nic none \
  -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.cpio" \
  -append "console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=3" \
  -drive file="$DISK",format=raw,if=none,id=scratch -device virtio-blk-device,drive=scratch \
  </dev/null 2>&1 | sed -u 's/\r$//' | tee "$CONSOLE" | grep --line-buffered -E '^@@AARCH64|Traceback|Error|error:'
QEMU_RC=${PIPESTATUS[0]}
set -e
T_GUEST=$(( $(date +%s) - T_BOOT ))
rm -f "$WORK/initrd.cpio"
cp "$CONSOLE" "$CACHE/last-console.log"
log "guest finished after ${T_GUEST}s (qemu rc $QEMU_RC)"
[ "$QEMU_RC" = 124 ] && fail "the guest ran past ${TIMEOUT_MIN} min (see $CONSOLE)"

if [ "$MODE" = cold ] && grep -q '^base-save 0$' <(dd if="$DISK" bs=1M skip=$RESULTS_OFFSET_MB count=256 2>/dev/null | tar -xOf - ./status.txt 2>/dev/null || true); then
  log "caching the set-up guest rootfs -> $BASE_CPIO"
  rm -rf "$WORK/base"; mkdir -p "$WORK/base"
  tar -C "$WORK/base" -xf "$DISK" 2>/dev/null || true
  if [ -x "$WORK/base/opt/venv/bin/python" ]; then
    (cd "$WORK/base" && find . | LC_ALL=C sort | $NICE cpio -o -H newc --quiet) >"$BASE_CPIO.tmp" && mv "$BASE_CPIO.tmp" "$BASE_CPIO"
    echo "$WHEELS_KEY" >"$CACHE/base.key"
  else
    log "WARNING: the saved rootfs is incomplete; the next run is cold again"
  fi
  rm -rf "$WORK/base"
fi

RES=$WORK/results; mkdir -p "$RES"
dd if="$DISK" of="$WORK/results.tar" bs=1M skip=$RESULTS_OFFSET_MB count=256 2>/dev/null
tar -C "$RES" -xf "$WORK/results.tar" 2>/dev/null \
  || { tail -40 "$CONSOLE"; fail "no results came back from the guest (see $CONSOLE)"; }
rm -f "$DISK"

# ------------------------------------------------------------------ report
echo
echo "==================== fer-edge aarch64 check ($(date -u +%Y-%m-%dT%H:%MZ), $MODE run, source $GIT_REV) ===================="
set +e
$PYTHON - "$RES" "$WORK" "$N_SLICE" "$SUITE" "$CPU" <<'PY'
import json, sys
from pathlib import Path
res, work, n, suite, cpu = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rd = lambda n: (res / n).read_text().strip() if (res / n).exists() else "?"
print(f"guest: Debian {suite} arm64 under qemu-system-aarch64 -M virt -cpu {cpu} (full-system TCG emulation)")
print(f"guest uname -m: {rd('uname_m.txt')}   kernel {rd('kernel.txt')}   {rd('python.txt')}")
print(f"guest cpu {rd('features.txt')}")
print("guest packages: " + ", ".join(rd("versions.txt").split()))
for b in ("litert", "onnxruntime"):
    p = res / f"predict_{b}.json"
    if not p.exists():
        print(f"predict ({b}): NO OUTPUT"); continue
    recs = json.loads(p.read_text())
    try:
        ref = {Path(r["image"]).name: r["faces"] for r in json.loads((work / f"x86_predict_{b}.json").read_text())}
    except (OSError, ValueError):
        ref = {}
    print(f"fer-edge predict --backend {b}: the 7 bundled 48x48 samples and the same faces in 640x480 frames "
          "(aarch64 | x86 host):")
    desc = lambda faces: ", ".join(f"{f['label']} {f['score']:.2f} at {tuple(f['box'])}" for f in faces) or "-"
    for r in recs:
        name, faces = Path(r["image"]).name, r["faces"]
        x = ref.get(name)
        xs = "x86 n/a" if x is None else f"x86 {len(x)}: {desc(x)}"
        if x is None:
            same = ""
        elif [(f["label"], f["box"]) for f in x] == [(f["label"], f["box"]) for f in faces]:
            same = "  same"
        else:
            same = "  same labels" if [f["label"] for f in x] == [f["label"] for f in faces] else "  DIFFERENT"
        print(f"  {name:24s} aarch64 {len(faces)}: {desc(faces):38s} | {xs}{same}")
for b in ("onnxruntime", "litert"):
    p = res / f"evaluate_{b}.json"
    if p.exists():
        e = json.loads(p.read_text())
        print(f"fer-edge evaluate --backend {b:11s} {Path(e['model']).name:30s}: accuracy {e['accuracy']:.4f}  macro-F1 {e['macro_f1']:.4f}  "
              f"n={e['n']} ({e['split_source']})")
    else:
        print(f"fer-edge evaluate --backend {b}: NO OUTPUT")
p = res / "cam.json"
if p.exists():
    c = json.loads(p.read_text()); ms = c["ms_per_frame"]
    print(f"fer-edge cam --source demo --no-display --max-frames 50: {c['frames']} frames, {c['faces']} faces, {c['fps']} frames/s "
          f"emulated (decode {ms['decode']} / detect {ms['detect']} / classify {ms['classify']} / draw {ms['draw']} ms); "
          f"ended: {c['end_reason']}")
else:
    print("cam: NO OUTPUT")
print("guest step status: " + ", ".join(l.replace(" ", "=") for l in rd("status.txt").splitlines()))
PY
echo
if [ -s "$RES/aarch64.json" ]; then
  $PYTHON "$SRC/scripts/aarch64_guest.py" compare "$WORK/x86.json" "$RES/aarch64.json" --min-agreement $MIN_AGREEMENT
  AGREE_RC=$?
else
  echo "no per-image predictions came back from the guest"; AGREE_RC=1
fi
set -e
GUEST_OK=1; grep -qv ' 0$' "$RES/status.txt" && GUEST_OK=0
grep -q '^cam 0$' "$RES/status.txt" || GUEST_OK=0
echo
echo "times: guest ${T_GUEST}s, total $(( $(date +%s) - T_START ))s ($MODE run, qemu -cpu $CPU -smp $SMP). Emulated timings are NOT Raspberry Pi timings."
if [ "$GUEST_OK" = 1 ] && [ "$AGREE_RC" = 0 ]; then
  echo "RESULT: PASS (every guest step ran; x86/aarch64 top-1 agreement >= $(awk "BEGIN{print $MIN_AGREEMENT*100}") % for every bundled model)"
  exit 0
fi
echo "RESULT: FAIL (guest steps: $(tr '\n' ' ' <"$RES/status.txt"); agreement check rc $AGREE_RC); console log: $CACHE/last-console.log"
exit 1
