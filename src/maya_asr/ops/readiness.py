"""Production readiness: every check a launch needs, as a PASS/FAIL/WARN table with fixes.

A launch that dies after an hour on a missing file or a bad credential wastes a node, so
``make prod-readiness`` (and ``scripts/run_stage1_prod.sh`` before training) checks, in order:

- **disk**: free space where checkpoints go >= (keep_local + 1) checkpoints + logs, and writable;
- **gpus**: count, model and memory (cuda-python's driver API, else ``nvidia-smi``), and that
  torch was built with CUDA;
- **config**, **artifacts**: see :mod:`maya_asr.ops.readiness_model`;
- **r2**: settings present and safe, bucket reachable, a put/get/delete probe.

No check raises: a broken environment becomes a FAIL row with a hint, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
GB = 1e9


@dataclass(frozen=True)
class CheckResult:
    """One row of the readiness table."""

    area: str  # disk | gpus | config | artifacts | r2
    name: str  # what was checked
    status: str  # PASS, WARN or FAIL
    detail: str  # what was found
    fix: str = ""  # how to fix it (WARN/FAIL)


@dataclass(frozen=True)
class ReadinessConfig:
    """What the launch will use, and what it needs."""

    config_path: Path = Path("configs/train/stage1_prod_8xh200.yaml")  # training config (NeMo)
    train_parquet: Path = Path("artifacts/phase3/production_train_final.parquet")  # index
    val_manifest: Path = Path("data/manifests/stage1_prod_val_v2.jsonl")  # validation manifest
    pretrained_encoder: Path = Path("pretrained/parakeet_tdt_1.1b_encoder.pt")  # encoder weights
    checkpoint_dir: Path = Path("experiments/stage1_prod/checkpoints")  # where checkpoints land
    expect_gpus: int = 8  # GPUs this node must have
    min_gpu_memory_gb: float = 80.0  # per GPU
    keep_local: int = 2  # checkpoints the watcher keeps locally
    checkpoint_gb: float = 13.0  # one checkpoint with optimizer state (1.1B params, AdamW)
    logs_gb: float = 50.0  # logs, TensorBoard, validation outputs
    env_file: Path = Path(".env")  # R2 settings file
    check_r2: bool = True  # probe the bucket (off for offline dry runs)

    def __post_init__(self):
        if self.expect_gpus < 0 or self.keep_local < 0:
            raise ValueError("expect_gpus and keep_local must be >= 0")


def _guard(area: str, name: str, fn: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run a check; an unexpected exception becomes a FAIL row instead of a crash."""
    try:
        return fn()
    except Exception as exc:
        return [
            CheckResult(
                area,
                name,
                FAIL,
                f"check crashed: {type(exc).__name__}: {exc}",
                "report this; the check itself has a bug",
            )
        ]


# ---------------------------------------------------------------- disk
def check_disk(cfg: ReadinessConfig) -> list[CheckResult]:
    target = Path(cfg.checkpoint_dir).absolute()
    probe = target
    while not probe.exists():
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    need = (cfg.keep_local + 1) * cfg.checkpoint_gb + cfg.logs_gb
    free = usage.free / GB
    detail = (
        f"{free:.0f} GB free on {probe} (need {need:.0f} GB: {cfg.keep_local + 1} x "
        f"{cfg.checkpoint_gb:.0f} GB checkpoints + {cfg.logs_gb:.0f} GB logs)"
    )
    fix = f"free {need - free:.0f} GB or point --checkpoint-dir at a bigger volume"
    rows = [
        CheckResult(
            "disk",
            "free space",
            PASS if free >= need else FAIL,
            detail,
            "" if free >= need else fix,
        )
    ]
    writable = os.access(probe, os.W_OK)
    if writable:
        try:
            with tempfile.NamedTemporaryFile(dir=probe, prefix=".readiness-"):
                pass
        except OSError:
            writable = False
    rows.append(
        CheckResult(
            "disk",
            "writable",
            PASS if writable else FAIL,
            f"{probe} is {'writable' if writable else 'NOT writable'}",
            "" if writable else f"fix the permissions of {probe}",
        )
    )
    return rows


# ---------------------------------------------------------------- gpus
@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_gb: float


def gpus_from_cuda_python() -> list[GpuInfo]:
    """GPUs through cuda-python's driver API; raises when the driver cannot be loaded."""
    from cuda.bindings import driver

    def ok(result):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise RuntimeError(f"CUDA driver error {int(err)} ({err})")
        return values[0] if values else None

    ok(driver.cuInit(0))
    out = []
    for i in range(ok(driver.cuDeviceGetCount())):
        dev = ok(driver.cuDeviceGet(i))
        name = ok(driver.cuDeviceGetName(256, dev))
        name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
        out.append(GpuInfo(i, name, ok(driver.cuDeviceTotalMem(dev)) / 2**30))
    return out


def gpus_from_nvidia_smi() -> list[GpuInfo]:
    """GPUs from ``nvidia-smi``; raises when it is missing or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise FileNotFoundError("nvidia-smi is not on PATH")
    out = subprocess.run(
        [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"nvidia-smi failed: {out.stderr.strip() or out.stdout.strip()}")
    gpus = []
    for line in out.stdout.strip().splitlines():
        index, name, mem = (f.strip() for f in line.split(","))
        gpus.append(GpuInfo(int(index), name, float(mem) / 1024))
    return gpus


def check_gpus(cfg: ReadinessConfig, probes=(gpus_from_cuda_python, gpus_from_nvidia_smi)):
    errors, gpus, source = [], None, ""
    for probe in probes:
        try:
            gpus, source = probe(), probe.__name__.removeprefix("gpus_from_")
            break
        except Exception as exc:
            errors.append(f"{probe.__name__.removeprefix('gpus_from_')}: {exc}")
    rows = []
    if gpus is None:
        rows.append(
            CheckResult(
                "gpus",
                "count",
                FAIL if cfg.expect_gpus else WARN,
                f"no NVIDIA GPU visible (expected {cfg.expect_gpus}); " + "; ".join(errors),
                "run on the GPU node with the NVIDIA driver installed (nvidia-smi must work)",
            )
        )
    else:
        n = len(gpus)
        status = PASS if n == cfg.expect_gpus else (FAIL if n < cfg.expect_gpus else WARN)
        names = ", ".join(sorted({g.name for g in gpus})) or "none"
        rows.append(
            CheckResult(
                "gpus",
                "count",
                status,
                f"{n} GPU(s) via {source}: {names} (expected {cfg.expect_gpus})",
                ""
                if status == PASS
                else "check CUDA_VISIBLE_DEVICES and nvidia-smi, or pass --expect-gpus N",
            )
        )
        small = [g for g in gpus if g.memory_gb < cfg.min_gpu_memory_gb]
        if gpus:
            rows.append(
                CheckResult(
                    "gpus",
                    "memory",
                    FAIL if small else PASS,
                    ", ".join(f"gpu{g.index} {g.memory_gb:.0f} GiB" for g in gpus),
                    f"need >= {cfg.min_gpu_memory_gb:.0f} GiB per GPU for the 8xH200 config; use "
                    "H100/H200-class GPUs or lower the batch caps"
                    if small
                    else "",
                )
            )
    rows.append(_check_torch_cuda())
    return rows


def _check_torch_cuda() -> CheckResult:
    try:
        import torch
    except ImportError as exc:
        return CheckResult("gpus", "torch", FAIL, f"torch not importable: {exc}", "make setup")
    if torch.version.cuda is None:
        return CheckResult(
            "gpus",
            "torch",
            FAIL,
            f"torch {torch.__version__} is a CPU-only build",
            "on the GPU node: make setup TORCH_SPEC='torch==2.13.0 --index-url "
            "https://download.pytorch.org/whl/cu128'",
        )
    n = torch.cuda.device_count()
    return CheckResult(
        "gpus",
        "torch",
        PASS if n else FAIL,
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {n} GPU(s)",
        "" if n else "torch sees no GPU: check the driver and CUDA_VISIBLE_DEVICES",
    )


# ---------------------------------------------------------------- r2
def check_r2(cfg: ReadinessConfig) -> list[CheckResult]:
    from maya_asr.ops.credentials import CredentialsError, load_settings, redact
    from maya_asr.ops.retry import RetryPolicy
    from maya_asr.ops.store import ObjectStore, TransferConfig
    from maya_asr.ops.validate import probe_bucket

    try:
        settings = load_settings(env_file=cfg.env_file)
    except (CredentialsError, OSError) as exc:
        return [
            CheckResult(
                "r2",
                "credentials",
                FAIL,
                str(exc),
                "set R2_* in the environment or a chmod-600 .env; see README",
            )
        ]
    rows = [CheckResult("r2", "credentials", PASS, settings.describe())]
    transfer = TransferConfig(
        connect_timeout_s=10,
        read_timeout_s=30,
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=2),
    )
    store = ObjectStore.from_settings(settings, transfer)
    secrets = settings.secret_values()
    try:
        store.check_bucket()
        rows.append(CheckResult("r2", "bucket", PASS, f"{settings.bucket} reachable"))
    except Exception as exc:
        rows.append(
            CheckResult(
                "r2",
                "bucket",
                FAIL,
                redact(str(exc), secrets),
                "check R2_BUCKET, R2_ACCOUNT_ID/R2_ENDPOINT, the token's "
                "permissions and the network",
            )
        )
        return rows
    try:
        rows.append(
            CheckResult(
                "r2", "put/get/delete", PASS, probe_bucket(store, settings.key("_readiness"))
            )
        )
    except Exception as exc:
        rows.append(
            CheckResult(
                "r2",
                "put/get/delete",
                FAIL,
                redact(str(exc), secrets),
                "the token needs Object Read & Write on this bucket",
            )
        )
    return rows


# ---------------------------------------------------------------- all
def run_checks(cfg: ReadinessConfig) -> list[CheckResult]:
    from maya_asr.ops.readiness_model import check_artifacts, check_config

    rows = _guard("disk", "disk", lambda: check_disk(cfg))
    rows += _guard("gpus", "gpus", lambda: check_gpus(cfg))
    facts: dict = {}
    rows += _guard("config", "config", lambda: check_config(cfg.config_path, facts))
    rows += _guard("artifacts", "artifacts", lambda: check_artifacts(cfg, facts))
    if cfg.check_r2:
        rows += _guard("r2", "r2", lambda: check_r2(cfg))
    return rows


def exit_status(rows: list[CheckResult]) -> int:
    return 1 if any(r.status == FAIL for r in rows) else 0


def render_table(rows: list[CheckResult]) -> str:
    """A plain-text table (no colour, so it reads the same in logs and terminals)."""
    w_area = max([len(r.area) for r in rows] + [4])
    w_name = max([len(r.name) for r in rows] + [5])
    lines = [f"{'area':<{w_area}}  {'check':<{w_name}}  status  detail"]
    lines.append("-" * (len(lines[0]) + 40))
    for r in rows:
        lines.append(f"{r.area:<{w_area}}  {r.name:<{w_name}}  {r.status:<6}  {r.detail}")
        if r.fix and r.status != PASS:
            lines.append(f"{'':<{w_area}}  {'':<{w_name}}  {'':<6}  fix: {r.fix}")
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, WARN, FAIL)}
    verdict = "NOT READY" if counts[FAIL] else "READY"
    lines.append(f"{verdict}: {counts[PASS]} pass, {counts[WARN]} warn, {counts[FAIL]} fail")
    return "\n".join(lines)


def render_json(rows: list[CheckResult]) -> str:
    return json.dumps(
        {"ready": exit_status(rows) == 0, "checks": [asdict(r) for r in rows]}, indent=2
    )
