#!/usr/bin/env bash
# The GPU path in one script, for a lent device (under 8 minutes on one H100):
#   bash benchmarks/gpu_check.sh            # from the repository root, the project installed
# Each figure is one line starting "gpu_check:". Prints, in order:
#   1. the device and the versions of the driver, torch, Ray;
#   2. the paper's main job packed on CUDA (sweeps/specs/paper_feature_noise.yaml, resources.gpu 1):
#      wall time of the whole command and the driver's own "Sweep ... in N s" line;
#   3. benchmarks/packed_images.py on CUDA for preact_resnet18 (64 channels, bfloat16 autocast,
#      channels-last: precision auto on CUDA) for B in {1, 2, 4, 8, 16, 32}, against the unpacked
#      trainer, and two unpacked trainings started at once on the device (two half-GPU trials);
#   4. a 2-pack smoke of the CIFAR spec on CIFAR-format fixture data (tests/image_fixtures.py);
#   and, on CUDA, the memory probe's answer for the CIFAR spec (members one GPU holds).
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with tiny sizes (a dry run of this script).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
[ -x .venv/bin/python ] && PY=.venv/bin/python
DEVICE=${GPU_CHECK_DEVICE:-cuda}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
say() { echo "gpu_check: $*"; }

say "device: $($PY -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device (CPU)')")"
say "versions: $($PY -c "import torch, ray, sys; print(f'python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), ray {ray.__version__}')")"
command -v nvidia-smi >/dev/null && say "driver: $(nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader | head -1)"

if [ "$DEVICE" = cuda ]; then GPU=1; SIZES="1 2 4 8 16 32"; RESNET="--resnet-images 256 --rounds 3"
else GPU=0; SIZES="1 2"; RESNET="--resnet-images 16 --resnet-channels 4 --rounds 1"; fi

# 2. the main job, packed (pack: auto asks whole GPUs for its packs)
start=$(date +%s.%N)
$PY -m mixup_cli run sweeps/specs/paper_feature_noise.yaml --storage "$WORK/res" \
    --tracking-uri "sqlite:///$WORK/mlflow.db" --set "resources.gpu=$GPU" --no-report \
    > "$WORK/main.out" 2>&1 || { cat "$WORK/main.out"; exit 1; }
end=$(date +%s.%N)
say "main job on $DEVICE: $(awk "BEGIN {printf \"%.1f\", $end - $start}") s end to end; $(grep -m1 "^Sweep '" "$WORK/main.out")"

# 2b. the memory probe pack: auto uses on GPUs (members of the CIFAR spec's trials one GPU holds)
if [ "$DEVICE" = cuda ]; then
  say "memory probe: $($PY -c "
import ray
from sweeps.execution.packing import probe_gpu_members
from sweeps.spec import load_spec
ray.init(num_gpus=1, include_dashboard=False, log_to_driver=False)
print(probe_gpu_members(load_spec('sweeps/specs/cifar10_early_stop.yaml')), 'preact_resnet18 members on one GPU')
" 2>/dev/null | tail -1)"
fi

# 3. packed ResNet-18 against the unpacked trainer, then two unpacked trainings sharing the device
$PY benchmarks/packed_images.py --device "$DEVICE" --skip-mnist --sizes $SIZES $RESNET \
    | tee "$WORK/packed.out" | sed 's/^/gpu_check: /'
for i in 1 2; do
  $PY benchmarks/packed_images.py --device "$DEVICE" $RESNET --unpacked-seconds 20 \
      > "$WORK/shared$i.out" &
done
wait
shared=$(cat "$WORK"/shared*.out | awk '/unpacked_images_per_s/ {s += $2} END {printf "%.0f", s}')
b8=$(awk '/preact_resnet18/ {on=1} on && $1 == 8 {print $4}' "$WORK/packed.out")
say "two unpacked preact_resnet18 trainings sharing the $DEVICE: $shared images/s together"
[ -n "$b8" ] && say "packed B = 8: $b8 images/s = $(awk "BEGIN {printf \"%.2f\", $b8 / $shared}")x two half-GPU trials (target 2.5x)"

# 4. a 2-pack smoke of the CIFAR spec on CIFAR-format fixture data
$PY -c "import sys; sys.path.insert(0, '.'); from tests.image_fixtures import write_cifar10_fixture; write_cifar10_fixture(__import__('pathlib').Path('$WORK/data'))"
start=$(date +%s.%N)
MIXUP_DATA_ROOT="$WORK/data" $PY -m mixup_cli run sweeps/specs/cifar10_early_stop.yaml --smoke \
    --pack 4 --set "resources.gpu=$GPU" --storage "$WORK/res" --tracking-uri "sqlite:///$WORK/mlflow.db" \
    --no-report > "$WORK/cifar.out" 2>&1 || { cat "$WORK/cifar.out"; exit 1; }
end=$(date +%s.%N)
say "CIFAR spec smoke, 8 trials in 2 packs on $DEVICE: $(awk "BEGIN {printf \"%.1f\", $end - $start}") s; $(grep -m1 "^Sweep '" "$WORK/cifar.out")"
