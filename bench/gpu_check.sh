#!/usr/bin/env bash
# The checks rlx runs on a lent GPU machine (one command, a fixed time budget), in priority order:
#   1. versions and the GPU;  2. the `gpu`-marked tests;  3. bench/rlvr_vs_trl.py --device cuda (a, b);
#   4. recipes/gsm8k_qwen_vllm.yaml at the real model size (bench/gpu_recipe_check.py);
#   5. the default recipe on CUDA;  6. bench setting c;  7. the whole test suite with CUDA visible.
# Each part gets a time cap and the time left; a part that fails or runs out does not stop the next.
# Logs go to $OUT (the device tool brings that folder back), else /tmp/gpu_check.
#
#   bash bench/gpu_check.sh [BUDGET_SECONDS] [PARTS]   # default 520 s, all parts
#   bash bench/gpu_check.sh 270 "gpu_tests staleness"  # only these (names as in the part lines below;
#                                                      # fp8_diag and fixed_tests run only when named)
#
# A machine without a package registry gets rlx's missing dependencies from wheels in .whl/ (see
# docs/bench_rlvr.md, "On a GPU", for the pip download line); they are installed to /tmp/site.
set -u
BUDGET=${1:-520}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
PY=${PY:-python3}
export PYTHONPATH="$PWD/src"
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi

PARTS=${2:-"env gpu_tests bench_ab gsm8k_recipe default_recipe bench_c suite"}
GSM8K_STEPS=${GSM8K_STEPS:-3}

part() {  # part NAME CAP_SECONDS COMMAND...
  local name=$1 cap=$2; shift 2
  case " $PARTS " in *" $name "*) ;; *) return ;; esac
  local left=$((BUDGET - SECONDS - 5))
  if [ "$left" -lt 20 ]; then echo "== $name: skipped, ${left}s left" | tee -a "$OUT/log"; return; fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "== $name (cap ${cap}s, at ${SECONDS}s): $*" | tee -a "$OUT/log"
  local t0=$SECONDS
  timeout --kill-after=5 "$cap" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  tail -n 40 "$OUT/$name.txt" >> "$OUT/log"
  echo "== $name: rc $rc in $((SECONDS - t0))s" | tee -a "$OUT/log"
}

part env 40 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c '
import torch, transformers, trl, datasets, pydantic, math_verify, gymnasium, peft, sys
print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(),
      \"transformers\", transformers.__version__, \"trl\", trl.__version__, \"peft\", peft.__version__)
try:
    import vllm; print(\"vllm\", vllm.__version__)
except ImportError as e:
    print(\"vllm: not installed:\", e)'"
# CPU vs CUDA: the FP8 scale by a Python-scalar divisor (CUDA multiplies by the reciprocal) and by a tensor
part fp8_diag 40 $PY -c "
import torch
torch.manual_seed(0)
x = (torch.randn(300, 300) * 100).abs().amax(1)
for name, f in (('scalar', lambda a: a / 448.0), ('tensor', lambda a: a / torch.full_like(a, 448.0))):
    c, g = f(x), f(x.cuda()).cpu()
    print(name, 'divisor: CPU and CUDA scales differ in', int((c != g).sum()), 'of', x.numel())
y = torch.randn(100000) * 200
cast = lambda t: t.clamp(-448, 448).to(torch.float8_e4m3fn).float().cpu()
print('e4m3 cast of the same float32 values: CPU and CUDA differ in', int((cast(y) != cast(y.cuda())).sum()))
from rlx.quant.fp8 import FP8Spec, fake_fp8
x = torch.randn(300, 300) * 100
for gran in ('tensor', 'row', 'block'):
    s = FP8Spec('e4m3', gran)
    print('fake_fp8', gran, ': CPU and CUDA differ in', int((fake_fp8(x, s) != fake_fp8(x.cuda(), s).cpu()).sum()))
"
part gpu_tests 120 $PY -m pytest -m gpu tests/quant/test_fp8_flow.py tests/rollout/test_vllm.py -rs -q -p no:cacheprovider
part bench_ab 170 $PY bench/rlvr_vs_trl.py --device cuda --settings a,b
part fixed_tests 90 $PY -m pytest -q -n 8 -p no:cacheprovider tests/robust/test_cadv.py tests/tasks/test_heldout.py \
  tests/train/test_ahead.py tests/quant/test_fp8_flow.py
part staleness 60 $PY bench/staleness_check.py
part gsm8k_recipe 150 $PY bench/gpu_recipe_check.py --steps "$GSM8K_STEPS" --trace-every 40 --out /tmp/gsm8k_run
[ -f /tmp/gsm8k_run/metrics.jsonl ] && cp /tmp/gsm8k_run/metrics.jsonl "$OUT/gsm8k_metrics.jsonl"
part default_recipe 90 $PY -c "import sys; from rlx.cli import main; sys.exit(main(['train', 'recipes/arith_grpo.yaml', '--out', '/tmp/arith_cuda']))"
part bench_c 120 $PY bench/rlvr_vs_trl.py --device cuda --settings c --repeats 1
part suite 200 $PY -m pytest -q -n 14 -p no:cacheprovider
echo "== done at ${SECONDS}s" | tee -a "$OUT/log"
