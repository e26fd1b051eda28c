#!/bin/sh
# Replay the campaign runs behind the bundled *.campaign-128 checkpoints (README.md here, weights.toml's
# `command` fields), then export each run's best.safetensors (its val-best EMA generator) as fp16 into
# inpaint_cli/bundled/. Two lanes side by side, one CPU thread each; each run logs to runs/NAME.log.
#
#   sh training/train_all.sh [--dry-run] SHARED_DATA_DIR     (from the repository root; runs go to runs/)
#
# --dry-run prints the commands instead of running them. The commands are the sessions' own, with --steps
# set to where each run stopped instead of 1000000 (no recipe here scales its schedule with --steps: with
# recon_steps given, GLCIC's phase 1 is recon_steps long) and --device cpu spelled out (the sessions' auto
# picked the CPU). Two differences from the sessions remain:
# - --steps N validates at step N, where a Ctrl-C stop did not; best.safetensors moves only if N scores
#   higher than every earlier validation.
# - The code changed under the long runs between resumes: the Context Encoder's first 1636 steps kept an
#   EMA with copied batch-norm statistics (averaged since e7343ad), and the first ~1700 DeepFill v2 steps
#   ran in NCHW (channels-last on CPU since 3fa472e). Expect the same curves to within rounding there, not
#   identical bits.
# - DeepFill v1 and PiiGAN ran with --amp (bf16 autocast) on a CPU with AMX-BF16, where it steps 2.3x
#   faster than fp32; on a CPU without native bf16 (doctor: "native bf16") autocast is emulated and slower.
set -eu

# Where DeepFill v1's and PiiGAN's shipped runs were stopped (Ctrl-C); their val-best, shipped steps are
# 6000 and 2100 (weights.toml). The environment may override them; an empty count skips that model.
V1_STEPS=${V1_STEPS-6174}
PIIGAN_STEPS=${PIIGAN_STEPS-2199}
# The 2026-12-02 continuations (`--init` from the run before's best, exported to fp16 as the bundled file
# was; a new run, so its steps count from 0): where each was stopped. Empty skips it.
GLCIC2_STEPS=${GLCIC2_STEPS-1327}
GLCIC2_RESUMED_STEPS=${GLCIC2_RESUMED_STEPS-1856}
PIIGAN2_STEPS=${PIIGAN2_STEPS-1002}

dry=0
if [ "${1-}" = "--dry-run" ]; then
    dry=1
    shift
fi
data_src=${1:?usage: train_all.sh [--dry-run] SHARED_DATA_DIR}
here=$(dirname "$0")
data=runs/data
for name in V1_STEPS PIIGAN_STEPS GLCIC2_STEPS GLCIC2_RESUMED_STEPS PIIGAN2_STEPS; do
    eval "value=\${$name}"
    case $value in
        '') echo "train_all.sh: $name is empty: its model is skipped (set it at the top of $0)" >&2 ;;
        *[!0-9]*) echo "train_all.sh: $name=$value is not a step count; set it at the top of $0" >&2; exit 2 ;;
    esac
done

# One shell word per argument, quoted where the shell would need it, so the printed line can be pasted.
show() {
    line=
    for arg do
        case $arg in
            '' | *[!A-Za-z0-9_./=:,+@%^-]*) arg="'$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'" ;;
        esac
        line="$line${line:+ }$arg"
    done
    printf '%s\n' "$line"
}

# run LOG COMMAND...: run it with its output appended to runs/LOG.log (LOG "-": to this terminal), or
# print it (--dry-run).
run() {
    log=$1
    shift
    if [ "$dry" = 1 ]; then
        show "$@"
    elif [ "$log" = - ]; then
        "$@"
    else
        "$@" >> "runs/$log.log" 2>&1
    fi
}

common="--data $data --val-list $data/val.txt --size 128 --short-side 256 --masks mixed --val-count 32
        --seed 0 --workers 1 --log-every 10 --device cpu --no-progress"
# The continuations ran with bf16 autocast and data loading in process (--workers 0).
continued="--data $data --val-list $data/val.txt --size 128 --short-side 256 --masks mixed --val-count 32
        --seed 0 --workers 0 --log-every 10 --device cpu --no-progress --amp"

# continue_run FROM TO ARCH STEPS ARGS...: a new run TO, started with --init from FROM's best.safetensors as
# the fp16 file the bundle shipped (exported into FROM), trained for STEPS; skipped when STEPS is empty.
continue_run() {
    from=$1 to=$2 arch=$3 steps=$4
    shift 4
    [ -n "$steps" ] || return 0
    run - inpaint models export "runs/$from/best.safetensors" --name "$arch.campaign-128" \
        --out "runs/$from/${arch}_campaign-128.safetensors"
    # shellcheck disable=SC2086  # $continued is a list of words
    run "$to" inpaint train --model "$arch" "$@" --init "runs/$from/${arch}_campaign-128.safetensors" \
        $continued --steps "$steps" --out "runs/$to"
}

# Lane A. DeepFill v2 at cnum 32 (training/width_probe.sh's cnum-32 run, continued): reconstruction only,
# lr 3e-4 to step 3487, then the same run resumed at 1e-4 (`--resume --lr` scales every optimiser's rate
# from the resumed step on; `--steps` may change on a resume) to step 6500, its val-best and shipped step.
lane_a() {
    # shellcheck disable=SC2086  # $common is a list of words
    run campaign_v2 inpaint train --model deepfill_v2 --set cnum=32 --batch 8 --lr 3e-4 --steps 3487 \
        --recipe recon_steps=1000000 --recipe hole_weight=6 --recipe ema=0.999 \
        --val-every 100 --save-every 100 --preview-every 500 $common --out runs/campaign_v2
    run campaign_v2 inpaint train --out runs/campaign_v2 --resume --steps 6500 --lr 1e-4 --no-progress
    # DeepFill v1 at paper width (cnum 32) with the small-budget recipe and bf16 autocast: lr 3e-4 to step
    # 3136 (where the session stopped it, its EMA flattening), then resumed at 1e-4. PiiGAN (lane B) likewise,
    # switching at step 1436.
    if [ -n "$V1_STEPS" ]; then
        # shellcheck disable=SC2086
        run campaign_deepfill_v1 inpaint train --model deepfill_v1 --set cnum=32 --batch 8 --lr 3e-4 \
            --steps 3136 --recipe recon_steps=1000000 --recipe hole_weight=6 --recipe ema=0.999 \
            --recipe warmup_steps=100 --val-every 100 --save-every 100 --amp $common --out runs/campaign_deepfill_v1
        run campaign_deepfill_v1 inpaint train --out runs/campaign_deepfill_v1 --resume --steps "$V1_STEPS" \
            --lr 1e-4 --no-progress
    fi
}

# Lane B. Context Encoder (width 32, bottleneck 100; the paper's L2, EMA) to step 5795 (val-best: 4400),
# GLCIC from scratch (phase 1 only: MSE, EMA) to step 500 (the session ran on to step 58x without another
# validation, which cannot change best.safetensors), then PiiGAN.
lane_b() {
    # shellcheck disable=SC2086
    run campaign_ce inpaint train --model context_encoder --set width=32 --set bottleneck=100 --batch 16 \
        --steps 5795 --recipe recon_steps=1000000 --recipe ema=0.999 \
        --val-every 200 --save-every 200 --preview-every 1000 $common --out runs/campaign_ce
    # shellcheck disable=SC2086
    run campaign_glcic inpaint train --model glcic --batch 8 --steps 500 --recipe recon_steps=1000000 \
        --recipe ema=0.999 --val-every 100 --save-every 100 --preview-every 100 $common --out runs/campaign_glcic
    # GLCIC continued from its shipped best at half ADADELTA's rate (at 1.0 the raw generator's val PSNR swung
    # by up to 6 dB), then resumed at 0.2 when its EMA turned down. PiiGAN's continuation keeps its last rate.
    continue_run campaign_glcic campaign_glcic2 glcic "$GLCIC2_STEPS" --batch 8 --lr 0.5 \
        --recipe recon_steps=1000000 --recipe ema=0.999 --val-every 100 --save-every 100 --preview-every 500
    if [ -n "$GLCIC2_STEPS" ] && [ -n "$GLCIC2_RESUMED_STEPS" ]; then
        run campaign_glcic2 inpaint train --out runs/campaign_glcic2 --resume --steps "$GLCIC2_RESUMED_STEPS" \
            --lr 0.2 --no-progress
    fi
    if [ -n "$PIIGAN_STEPS" ]; then
        # shellcheck disable=SC2086
        run campaign_piigan inpaint train --model piigan --set cnum=32 --batch 8 --lr 3e-4 \
            --steps 1436 --recipe recon_steps=1000000 --recipe hole_weight=6 --recipe ema=0.999 \
            --recipe warmup_steps=100 --val-every 100 --save-every 100 --amp $common --out runs/campaign_piigan
        run campaign_piigan inpaint train --out runs/campaign_piigan --resume --steps "$PIIGAN_STEPS" \
            --lr 1e-4 --no-progress
        continue_run campaign_piigan campaign_piigan2 piigan "$PIIGAN2_STEPS" --set cnum=32 --batch 8 --lr 1e-4 \
            --recipe recon_steps=1000000 --recipe hole_weight=6 --recipe ema=0.999 --recipe warmup_steps=100 \
            --val-every 100 --save-every 100 --preview-every 500
    fi
}

export OMP_NUM_THREADS=1
if [ "$dry" = 1 ]; then
    show sh "$here/make_data.sh" "$data_src" "$data"
    echo "# lane A"
    lane_a
    echo "# lane B"
    lane_b
else
    mkdir -p runs
    sh "$here/make_data.sh" "$data_src" "$data" > /dev/null
    lane_a &
    pid_a=$!
    lane_b &
    pid_b=$!
    status=0
    wait "$pid_a" || status=$?
    wait "$pid_b" || status=$?
    if [ "$status" != 0 ]; then
        echo "train_all.sh: a training failed (exit $status); see runs/campaign_*.log" >&2
        exit "$status"
    fi
fi

# Each export prints the file's weights.toml entry (sha256, size, steps, val scores) on stdout.
export_run() {  # RUN ARCH
    run - inpaint models export "runs/$1/best.safetensors" --name "$2.campaign-128" \
        --out "inpaint_cli/bundled/$2_campaign-128.safetensors"
}
if [ "$dry" = 1 ]; then echo "# exports"; fi
export_run campaign_v2 deepfill_v2
# The newest run of each lineage is the bundled one.
glcic_run=campaign_glcic
[ -z "$GLCIC2_STEPS" ] || glcic_run=campaign_glcic2
piigan_run=campaign_piigan
[ -z "$PIIGAN2_STEPS" ] || piigan_run=campaign_piigan2
export_run campaign_ce context_encoder
export_run "$glcic_run" glcic
if [ -n "$V1_STEPS" ]; then export_run campaign_deepfill_v1 deepfill_v1; fi
if [ -n "$PIIGAN_STEPS" ]; then export_run "$piigan_run" piigan; fi
