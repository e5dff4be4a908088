"""Benchmark 1: training throughput of the kit's MRC step against the authors' padded fp32 loop.

What runs, on the same real batches (a seeded sample of WNUT-16 / CoNLL-2003 train) and the
same initial weights, one after the other in one process:

* **kit (bf16)** and **kit (fp32)**: :func:`cofee_lib.engine.train` itself (``max_steps``
  optimizer steps), i.e. length bucketing + dynamic padding by ``model.collate``, with and
  without ``torch.autocast(bfloat16)``. The time is the engine's own ``train_seconds``
  (every step: collate, forward, backward, clipping, AdamW), the tokens its ``useful_tokens``.
* **reference**: what the authors' code did: every (query, context) feature padded (or cut)
  to 150 sub-tokens, batches drawn in random order, fp32. Same model, same features, same
  batch size, same optimizer, clipping and loss. Its steps all have the same shape, so fewer
  of them (``reference_steps``) give as good an average; one more step before them warms up
  and is not timed (which favours the reference: the kit's time includes its first step).

*Useful tokens* are non-padding sub-tokens ([CLS], query, [SEP], context, [SEP]).

The machine's ceiling is measured in the same run, before and after the training variants
(the higher of the two counts): the rate of a large fp32 and a large bf16 matrix product
(``n`` = 2048 on a CPU, 8192 on a GPU). FLOPs of the model (documented formula):

    per sequence of n useful tokens, forward + backward:
        6 * P * n            P = non-embedding parameters (encoder layers + heads)
      + 12 * L * n^2 * h     attention scores and weighted sum (L layers, hidden size h)

*Model FLOPs* count useful tokens only (a padded position does no useful work: MFU, the
stricter figure); *executed FLOPs* count every position of the padded batch tensor (what the
hardware did). Both are reported; the target is checked on model FLOPs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

NAME = "train"
SIZES = {
    "tiny": {"datasets": ["wnut16"], "model": "tiny", "steps": 2, "batch_size": 4, "train_sentences": 40,
             "dev_sentences": 4, "pad_to": 150, "lr": 5e-5, "peak_n": 256, "peak_n_gpu": 1024,
             "peak_repeats": 2, "seed": 0},
    "full": {"datasets": ["wnut16", "conll2003"], "model": "embedded:minilm", "steps": 20, "reference_steps": 10,
             "batch_size": 16,
             "train_sentences": 1000, "dev_sentences": 16, "pad_to": 150, "lr": 5e-5, "peak_n": 2048,
             "peak_n_gpu": 8192, "peak_repeats": 5, "seed": 0},
}
TARGET_SPEEDUP = 2.0
TARGET_MFU_BF16 = 0.55   # issue 14: training MFU >= 55% where bf16 exists
# 2-D batch tensors and the value a padded position gets
PAD_VALUES = {"attention_mask": 0, "word_index": -1, "token_type_ids": 0, "start_labels": -100,
              "end_labels": -100, "labels": -100}


# --------------------------------------------------------------------------- FLOPs

def non_embedding_parameters(model) -> int:
    """Parameters that take part in matrix products: everything but the embedding tables."""
    return sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in f".{name}")


def sequence_flops(n_params: int, layers: int, hidden: int, lengths) -> float:
    """Forward + backward FLOPs of sequences of the given token ``lengths`` (formula in the module doc)."""
    return float(sum(6.0 * n_params * n + 12.0 * layers * n * n * hidden for n in lengths))


def flops_of_batches(model, batches: list[dict]) -> dict:
    """Model FLOPs (useful tokens) and executed FLOPs (padded tensor) of recorded batches."""
    cfg = model.encoder.config
    n_params = non_embedding_parameters(model)
    layers, hidden = int(cfg.num_hidden_layers), int(cfg.hidden_size)
    useful = sum(sequence_flops(n_params, layers, hidden, b["lengths"]) for b in batches)
    executed = sum(sequence_flops(n_params, layers, hidden, [b["padded_len"]] * len(b["lengths"])) for b in batches)
    return {"non_embedding_parameters": n_params, "layers": layers, "hidden": hidden,
            "model_flops": useful, "executed_flops": executed}


# --------------------------------------------------------------------------- the two loops

def _shape_hook():
    from cofee_lib.engine import TrainHooks

    class ShapeLog(TrainHooks):
        """Records the shape of every micro-batch the engine trains on (adds no loss)."""

        def __init__(self):
            self.batches = []

        def extra_loss(self, model, batch, outputs):
            mask = batch["attention_mask"]
            self.batches.append({"padded_len": int(mask.shape[1]), "lengths": mask.sum(dim=1).tolist()})
            return None

    return ShapeLog()


def kit_variant(model, init_state, train, dev, settings: dict, bf16: bool, out_dir: Path) -> dict:
    """``engine.train`` for ``settings["steps"]`` steps from ``init_state``; the engine's own timing."""
    from cofee_lib.engine import TrainConfig, train as engine_train

    model.load_state_dict(init_state)
    hook = _shape_hook()
    config = TrainConfig(epochs=1, max_steps=settings["steps"], batch_size=settings["batch_size"],
                         lr=settings["lr"], precision="bf16" if bf16 else "fp32", seed=settings["seed"], eval_batch_size=32,
                         checkpoint_every=0, progress=False)
    result = engine_train(model, train, dev, config, out_dir, hooks=hook, overwrite=True)
    useful = sum(sum(b["lengths"]) for b in hook.batches)
    executed = sum(b["padded_len"] * len(b["lengths"]) for b in hook.batches)
    return {"steps": result.steps, "seconds": result.train_seconds, "useful_tokens": result.useful_tokens,
            "useful_tokens_recorded": useful, "executed_tokens": executed,
            "padding_fraction": 1.0 - useful / executed if executed else 0.0,
            "useful_tokens_per_s": result.useful_tokens / result.train_seconds, "batches": hook.batches}


def pad_batch(batch: dict, length: int, pad_id: int) -> dict:
    """Pad (or cut) every [B, T] tensor of a collated batch to T = ``length`` (the authors' fixed length)."""
    import torch.nn.functional as F

    out = dict(batch)
    for key, value in batch.items():
        if not hasattr(value, "dim") or value.dim() != 2 or key.startswith("entity_"):
            continue
        fill = pad_id if key == "input_ids" else PAD_VALUES.get(key)
        if fill is None:
            raise KeyError(f"pad_batch: no padding value for batch key {key!r}")
        t = value.shape[1]
        out[key] = value[:, :length] if t >= length else F.pad(value, (0, length - t), value=fill)
    mask = out["attention_mask"]
    out["n_useful"] = mask.sum()
    return out


def reference_loop(model, init_state, features: list[dict], settings: dict, device) -> dict:
    """The authors' loop: random batches, every feature padded to ``pad_to``, fp32; timed per step."""
    import torch

    from cofee_lib.engine import make_batches

    model.load_state_dict(init_state)
    model.to(device)
    model.use_bf16 = False
    model.train()
    pad_to = settings["pad_to"]
    lengths = [min(len(f["input_ids"]), pad_to) for f in features]
    steps = settings.get("reference_steps") or settings["steps"]
    order = make_batches(lengths, settings["batch_size"], 0, settings["seed"], bucketing=False)[:steps + 1]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings["lr"])
    seconds, batches = 0.0, []
    for n, idx in enumerate(order):
        t0 = time.perf_counter()
        batch = pad_batch(model.collate([features[i] for i in idx]), pad_to, model._pad_id)
        loss = model(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())  # waits for the device, as the engine's loss bookkeeping does
        if n == 0 and len(order) > 1:
            continue  # warm-up step (one fixed shape: its kernels are made once), not timed
        seconds += time.perf_counter() - t0
        batches.append({"padded_len": pad_to, "lengths": [lengths[i] for i in idx]})
    useful = sum(sum(b["lengths"]) for b in batches)
    executed = pad_to * sum(len(b["lengths"]) for b in batches)
    return {"steps": len(batches), "seconds": seconds, "useful_tokens": useful, "executed_tokens": executed,
            "padding_fraction": 1.0 - useful / executed, "useful_tokens_per_s": useful / seconds,
            "batches": batches}


# --------------------------------------------------------------------------- one dataset

def _records(dataset: str, settings: dict):
    from cofee_lib.datasets import dataset_types, load_dataset
    from cofee_lib.pipeline import subsample

    train = subsample(load_dataset(dataset, "train", progress=False), settings["train_sentences"], seed=settings["seed"])
    dev = load_dataset(dataset, "dev", progress=False)[:settings["dev_sentences"]]
    return train, dev, dataset_types(dataset)


def _queries(dataset: str, types):
    from cofee_lib.errors import CofeeError
    from cofee_lib.queries import queries_for_types

    try:
        return queries_for_types(types, dataset=dataset)
    except CofeeError:
        return queries_for_types(types)


def measure_peaks(settings: dict, device) -> dict:
    import torch

    n = settings["peak_n_gpu"] if device.type == "cuda" else settings["peak_n"]
    return {"fp32": common.matmul_peak(torch.float32, n, settings["peak_repeats"], device),
            "bf16": common.matmul_peak(torch.bfloat16, n, settings["peak_repeats"], device)}


def bench_dataset(dataset: str, settings: dict, device, tmp: Path) -> dict:
    import copy

    from cofee_lib.backbones import build_backbone

    train, dev, types = _records(dataset, settings)
    model = build_backbone("mrc", types, model=settings["model"], queries=_queries(dataset, types),
                           records=train, seed=settings["seed"])
    init_state = copy.deepcopy(model.state_dict())
    features = model.featurize(train, train=True)
    common.say(f"train/{dataset}: {len(train)} sentences -> {len(features)} MRC features; "
               f"{settings['steps']} steps x batch {settings['batch_size']} per variant")
    variants = {}
    common.say(f"train/{dataset}: reference loop (pad to {settings['pad_to']}, fp32)")
    variants["reference_pad150_fp32"] = reference_loop(model, init_state, features, settings, device)
    for name, bf16 in (("kit_fp32", False), ("kit_bf16", True)):
        common.say(f"train/{dataset}: kit engine ({'bf16 autocast' if bf16 else 'fp32'})")
        variants[name] = kit_variant(model, init_state, train, dev, settings, bf16, tmp / f"{dataset}-{name}")
    for v in variants.values():
        v.update(flops_of_batches(model, v.pop("batches")))
        v["model_gflops_per_s"] = v["model_flops"] / v["seconds"] / 1e9
        v["executed_gflops_per_s"] = v["executed_flops"] / v["seconds"] / 1e9
    return {"sentences": len(train), "features": len(features), "types": types, "variants": variants}


# --------------------------------------------------------------------------- the benchmark

def summary_rows(datasets: dict, peaks: dict) -> list[dict]:
    """The summary rows from the measured variants and peaks (also what ``--show`` recomputes, so the
    targets above are applied to stored measurements too)."""
    summary = []
    for dataset, res in datasets.items():
        v = res["variants"]
        ref = v["reference_pad150_fp32"]
        speed_bf16 = common.ratio(v["kit_bf16"]["useful_tokens_per_s"], ref["useful_tokens_per_s"])
        speed_fp32 = common.ratio(v["kit_fp32"]["useful_tokens_per_s"], ref["useful_tokens_per_s"])
        summary += [
            common.row(f"1 train {dataset}", "useful tokens/s: kit (bf16) / authors' loop (pad 150, fp32)",
                       v["kit_bf16"]["useful_tokens_per_s"], ref["useful_tokens_per_s"], "tok/s", speed_bf16,
                       f">= {TARGET_SPEEDUP:g}x", speed_bf16 >= TARGET_SPEEDUP),
            common.row(f"1 train {dataset}", "useful tokens/s: kit (fp32) / authors' loop (pad 150, fp32)",
                       v["kit_fp32"]["useful_tokens_per_s"], ref["useful_tokens_per_s"], "tok/s", speed_fp32,
                       "(bf16 effect left out)", None),
            common.row(f"1 train {dataset}", "model FLOP rate (bf16 on) / measured bf16 matmul peak",
                       v["kit_bf16"]["model_gflops_per_s"], peaks["bf16"]["gflops"], "GFLOP/s",
                       v["kit_bf16"]["mfu"], f">= {TARGET_MFU_BF16:.0%}", v["kit_bf16"]["mfu"] >= TARGET_MFU_BF16,
                       share=True),
            common.row(f"1 train {dataset}", "model FLOP rate (fp32) / measured fp32 matmul peak",
                       v["kit_fp32"]["model_gflops_per_s"], peaks["fp32"]["gflops"], "GFLOP/s",
                       v["kit_fp32"]["mfu"], "(none)", None, share=True),
        ]
    return summary


def summary_from(result: dict) -> list[dict]:
    """The summary rows of a stored result of this benchmark."""
    return summary_rows(result["datasets"], result["peaks"]["used"])


def run(size: str = "full", work_dir="work", progress: bool = True) -> dict:
    settings = common.check_size(size, SIZES)
    device = common.device_of_choice()
    common.say(f"train: measuring the matmul peak on {device}")
    peaks_before = measure_peaks(settings, device)
    datasets = {}
    with tempfile.TemporaryDirectory(prefix="cofee-bench-train-") as tmp:
        for dataset in settings["datasets"]:
            datasets[dataset] = bench_dataset(dataset, settings, device, Path(tmp))
    peaks_after = measure_peaks(settings, device)
    peaks = {k: max(peaks_before[k], peaks_after[k], key=lambda p: p["gflops"]) for k in peaks_before}
    for res in datasets.values():
        v = res["variants"]
        ref = v["reference_pad150_fp32"]
        for name, peak in (("kit_fp32", peaks["fp32"]), ("kit_bf16", peaks["bf16"])):
            v[name]["mfu"] = v[name]["model_gflops_per_s"] / peak["gflops"]
            v[name]["executed_share_of_peak"] = v[name]["executed_gflops_per_s"] / peak["gflops"]
        ref["mfu"] = ref["model_gflops_per_s"] / peaks["fp32"]["gflops"]
        ref["executed_share_of_peak"] = ref["executed_gflops_per_s"] / peaks["fp32"]["gflops"]
    summary = summary_rows(datasets, peaks)
    return {"name": NAME, "size": size, "settings": settings, "device": str(device),
            "flop_formula": "per sequence of n useful tokens, forward+backward: 6*P*n + 12*L*n^2*h "
                            "(P non-embedding parameters, L layers, h hidden size); model FLOPs count "
                            "useful tokens, executed FLOPs the padded length",
            "peaks": {"before": peaks_before, "after": peaks_after, "used": peaks},
            "datasets": datasets, "summary": summary}


def main(argv=None) -> int:
    return common.script_main(run, SIZES, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
