"""What the machine can do fast: the training precision and the thread count, chosen at run start.

Precision
    Presets and commands say what is *allowed*: ``precision`` is ``"auto"``,
    ``"fp32"`` or ``"bf16"``. :func:`choose_precision` turns ``"auto"`` into
    ``"bf16"`` or ``"fp32"`` for the device the run uses:

    * CUDA: bf16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later);
    * CPU: bf16 only where the processor has native bf16 arithmetic
      (``avx512_bf16`` or ``amx_bf16`` among its flags), else fp32. On an
      AVX2-only CPU, bf16 autocast emulates every product and one MiniLM step
      ran ~10x slower than fp32; on an AVX-512-BF16 CPU it is ~1.3x faster.
      ``ONEDNN_MAX_CPU_ISA`` (e.g. ``AVX2``) or ``ATEN_CPU_CAPABILITY`` set
      below the bf16 level is honoured: torch then has no native bf16 kernels
      either (this is also how an AVX2-only machine is emulated on a newer one).
    * a CPU whose flags cannot be read (not Linux, not x86): a short measured
      probe (a few dozen products of the size the encoders use, both ways);
      bf16 only if it is clearly faster.

    The choice is returned with the facts it came from (``hardware``: the CPU
    model and its bf16 flags, or the GPU name), and the engine records both in
    every training report. The run cache keys on the precision used, so fp32
    and bf16 runs never share a store.

Threads
    :func:`default_threads` is the number of physical cores this process may
    run on (its CPU affinity mask, hyper-threads counted once). torch's own
    default can exceed that under a container quota, and two trainings that
    each use every core of a small machine spin against each other. To run two
    jobs at once, give each its own cores (``taskset -c 0 ...`` and
    ``taskset -c 1 ...``): the kit then uses one thread in each.
"""
from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that include native bf16 arithmetic
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX",
                     "AVX10_1_512_AMX_FP16", "AVX10_2_512_AMX_2", "ALL")
_PROBE_MIN_SPEEDUP = 1.15


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses, what was asked, and the hardware facts behind the choice."""

    precision: str          # "fp32" or "bf16"
    requested: str          # "auto", "fp32" or "bf16"
    reason: str             # one sentence
    hardware: str           # CPU model and bf16 flags, or the GPU name

    def to_dict(self) -> dict:
        return asdict(self)


def check_precision(value: str, where: str = "precision") -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else :class:`CofeeError`."""
    from .errors import CofeeError

    if value not in PRECISIONS:
        raise CofeeError(f"{where}: {value!r} is not a precision; expected one of {', '.join(PRECISIONS)}")
    return value


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """``{"model": str, "flags": set | None}`` from /proc/cpuinfo (flags None where unreadable)."""
    model, flags = platform.processor() or platform.machine(), None
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": model, "flags": None}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = set(value.split())
    return {"model": model, "flags": flags}


def _capped_below_bf16() -> str | None:
    """The environment variable that keeps torch's CPU kernels below the bf16 level, if one does."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in _ONEDNN_BF16_ISAS:
        return f"ONEDNN_MAX_CPU_ISA={cap}"
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten and not aten.startswith("avx512"):
        return f"ATEN_CPU_CAPABILITY={aten}"
    return None


def cpu_native_bf16() -> tuple[bool | None, str]:
    """(True / False / None for unknown, a description of the facts) for this CPU."""
    info = cpu_info()
    flags = info["flags"]
    if flags is None or not ({"avx2", "avx512f"} & flags or "sse2" in flags):
        return None, f"{info['model']} (CPU flags not readable as x86)"
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    facts = f"{info['model']}, flags: {', '.join(found) if found else 'no ' + '/'.join(BF16_CPU_FLAGS)}"
    capped = _capped_below_bf16() if found else None
    if capped:
        return False, f"{facts}; {capped} disables them"
    return bool(found), facts


def probe_bf16_speedup(size: int = 384, tokens: int = 512, repeats: int = 20) -> float:
    """fp32 time / bf16-autocast time of a small linear layer's forward and backward on CPU."""
    import torch

    layer = torch.nn.Linear(size, 4 * size)
    x = torch.randn(tokens, size, requires_grad=True)

    def run(bf16: bool) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(repeats):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    y = layer(x)
                y.float().sum().backward()
            best = min(best, time.perf_counter() - t0)
        return best

    run(False), run(True)  # warm-up
    return run(False) / max(run(True), 1e-9)


def _choose_cpu(requested: str) -> PrecisionChoice:
    native, facts = cpu_native_bf16()
    if requested != "auto":
        why = "forced" + ("" if requested == "fp32" or native else "; this CPU has no native bf16, expect it to be slow")
        return PrecisionChoice(requested, requested, why, facts)
    if native is None:
        speedup = probe_bf16_speedup()
        precision = "bf16" if speedup >= _PROBE_MIN_SPEEDUP else "fp32"
        return PrecisionChoice(precision, requested, f"measured probe: bf16 autocast {speedup:.2f}x the fp32 speed "
                               f"(bf16 needs >= {_PROBE_MIN_SPEEDUP}x)", facts)
    if native:
        return PrecisionChoice("bf16", requested, "the CPU has native bf16 arithmetic", facts)
    return PrecisionChoice("fp32", requested, "no native bf16 arithmetic available (bf16 autocast would be "
                           "emulated, ~10x slower)", facts)


def _choose_cuda(requested: str, device) -> PrecisionChoice:
    import torch

    name = torch.cuda.get_device_name(device)
    supported = torch.cuda.is_bf16_supported()
    if requested != "auto":
        return PrecisionChoice(requested, requested, "forced", f"GPU {name}")
    if supported:
        return PrecisionChoice("bf16", requested, "the GPU supports bf16", f"GPU {name}")
    return PrecisionChoice("fp32", requested, "the GPU does not support bf16", f"GPU {name}")


@functools.lru_cache(maxsize=None)
def _choose(requested: str, device_type: str, device_index) -> PrecisionChoice:
    if device_type == "cuda":
        return _choose_cuda(requested, device_index if device_index is not None else 0)
    if device_type == "cpu":
        return _choose_cpu(requested)
    if requested == "auto":  # other accelerators (mps, xpu): fp32 is what every backend runs correctly
        return PrecisionChoice("fp32", requested, f"no bf16 rule for device type {device_type!r}", device_type)
    return PrecisionChoice(requested, requested, "forced", device_type)


def choose_precision(requested: str = "auto", device=None) -> PrecisionChoice:
    """The precision a run on ``device`` (default: CPU) uses when ``requested`` is allowed."""
    import torch

    check_precision(requested)
    device = torch.device(device if device is not None else "cpu")
    return _choose(requested, device.type, device.index)


def physical_cores_available() -> int:
    """Physical cores in this process's CPU affinity mask (hyper-thread siblings counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(path.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def default_threads() -> int:
    """The thread count for torch when none is given: the physical cores this process may use."""
    return physical_cores_available()


def set_threads(requested: int | None) -> int:
    """Set torch's intra-op threads to ``requested`` (or :func:`default_threads`); return the count."""
    import torch

    n = int(requested) if requested else default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
