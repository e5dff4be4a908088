"""What the notebooks look at: stage reports as tables, examples, cluster views, the figures' panels.

Small functions that turn the reports of :mod:`cofee_lib.stages` and the
points of :mod:`cofee_lib.experiments` into pandas frames and matplotlib
axes, so that the notebooks stay prose and calls.
"""
from __future__ import annotations

from collections import Counter

# --------------------------------------------------------------------------- stage histories

def history_frame(report: dict):
    """Per-epoch training loss, dev F1 and seconds of one stage report."""
    import pandas as pd

    rows = [{"epoch": h.get("epoch"), "train loss": h.get("train_loss"),
             "dev F1 (%)": None if h.get("dev", {}).get("f1") is None else 100 * h["dev"]["f1"],
             "seconds": h.get("seconds")} for h in report.get("history", [])]
    return pd.DataFrame(rows).set_index("epoch")


def nee_iterations_frame(report: dict):
    """One row per NEE self-picking iteration: dev F1, the label set trained on and the relabelled one."""
    import pandas as pd

    rows = []
    for it in report.get("iterations", []):
        trained, relabelled = it["trained_on"], it.get("relabelled") or {}
        row = {"iteration": it["iteration"], "dev F1 (%)": 100 * (it.get("dev_f1") or 0.0), "best": it.get("is_best"),
               "entities trained on": trained["entities"],
               **{f"trained {t}": n for t, n in trained.get("per_type", {}).items()},
               "entities relabelled": relabelled.get("entities"),
               "added vs gazetteer": (it.get("vs_gazetteer") or {}).get("added"),
               "removed vs gazetteer": (it.get("vs_gazetteer") or {}).get("removed"),
               "relabelling": "kept (dev F1 = 0)" if it.get("skipped") else "applied"}
        rows.append(row)
    return pd.DataFrame(rows).set_index("iteration")


def changed_example(before: list[dict], after: list[dict], prefer_types: int = 2) -> tuple[dict, dict] | None:
    """A sentence whose labels differ between two label sets (same ids), preferring several types."""
    after_by_id = {r["id"]: r for r in after}
    best = None
    for rec in before:
        other = after_by_id.get(rec["id"])
        if other is None:
            continue
        if sorted(map(tuple, rec["spans"])) != sorted(map(tuple, other["spans"])):
            kinds = len({s[2] for s in rec["spans"] + other["spans"]})
            if best is None or (kinds >= prefer_types and best[2] < prefer_types):
                best = (rec, other, kinds)
                if kinds >= prefer_types:
                    break
    return None if best is None else (best[0], best[1])


# --------------------------------------------------------------------------- FET clusters

def clusterings_frame(report: dict):
    """One row per (clustering, cluster): size, V_k, alpha_k, from a FET stage report."""
    import pandas as pd

    rows = []
    for c in report.get("clusterings", []):
        for k, (size, var, alpha) in enumerate(zip(c["sizes"], c["variance"], c["alpha"])):
            rows.append({"clustering": c["epoch"], "cluster": k, "size": size, "V_k": var, "alpha_k": alpha})
    return pd.DataFrame(rows)


def fet_clustering(clusters: dict) -> dict:
    """Which clustering of ``clusters.json`` to show: the one FET's best epoch trained with, else the last.

    Returns ``{"index", "epoch", "labels", "why"}``. Epoch 0 is the clustering made with NEE's
    theta_best before FET trains (Algorithm 1, line 15); epoch e trains with the clustering made
    after epoch e-1 (lines 17-22).
    """
    runs = clusters.get("clusterings") or []
    if not runs:
        raise ValueError("clusters.json holds no clustering")
    index = clusters.get("best_epoch_trained_with")
    if index is None:
        index, why = len(runs) - 1, "the last one (which clustering the best epoch trained with is not recorded)"
    else:
        why = f"the one FET's best epoch ({clusters.get('best_epoch')}) trained with"
    epoch = runs[index]["epoch"]
    made = "before FET trained, with NEE's theta_best" if epoch == 0 else f"after FET's epoch {epoch}"
    return {"index": int(index), "epoch": epoch, "labels": list(runs[index]["labels"]),
            "why": f"clustering {index} of {len(runs)}, made {made}: {why}"}


def cluster_view(model_dir, records: list[dict], clusters: dict, batch_size: int = 64, seed: int = 0) -> dict:
    """FET's own clusters of D_s^best's entities, seen through a saved model; what notebook 05 shows.

    ``records`` are FET's training records (D_s^best, the NEE stage's ``ds_best.jsonl``),
    ``clusters`` the FET stage's ``clusters.json`` (:meth:`cofee_lib.stages.FineGrainedTyping.clusters_file`).
    The entities are those FET clustered, with the labels of :func:`fet_clustering`; no clustering
    is made here. ``model_dir`` (FET's best checkpoint) embeds them (sum-pooled span states, as
    FET does) for the 2-D projection and for alpha_k.

    Keys: ``points`` (a DataFrame with the 2-D PCA coordinates, FET's cluster, the entity's surface
    and type), ``alpha`` (alpha_k under the paper's sum-variance and under the authors'
    per-feature variance, with V_k and sizes, from these embeddings and FET's labels),
    ``contents`` (the types and most frequent surfaces of each cluster) and ``clustering``
    (which of FET's clusterings: index, epoch, why).
    """
    import pandas as pd
    import torch
    from sklearn.decomposition import PCA

    from .backbones import load_backbone
    from .clustering import variance_weights

    ids = [r.get("id") for r in records]
    if clusters.get("record_ids") is not None and list(clusters["record_ids"]) != ids:
        raise ValueError("clusters.json was made on other records than these (record ids differ): "
                         "pass FET's training records, the NEE stage's ds_best.jsonl")
    chosen = fet_clustering(clusters)
    entities = clusters["entities"]
    if len(chosen["labels"]) != len(entities):
        raise ValueError(f"clusters.json: {len(chosen['labels'])} labels for {len(entities)} entities")
    for rec_i, span_i, start, end, etype in entities:
        if list(records[rec_i]["spans"][span_i]) != [start, end, etype]:
            raise ValueError(f"clusters.json: entity ({rec_i}, {span_i}) is {[start, end, etype]}, "
                             f"the records hold {records[rec_i]['spans'][span_i]}")
    k = int(clusters["k"])
    model = load_backbone(model_dir)
    model.eval()
    emb_all, where = model.span_embeddings(records, batch_size=batch_size)
    row = {(int(r), int(s)): i for i, (r, s) in enumerate(where)}
    emb = emb_all[[row[(int(r), int(s))] for r, s, *_ in entities]].float()
    labels = torch.tensor(chosen["labels"], dtype=torch.long)
    sizes = torch.bincount(labels, minlength=k)
    centers = torch.zeros(k, emb.shape[1]).index_add_(0, labels, emb) / sizes.clamp_min(1).unsqueeze(1)
    alpha_sum, v_sum = variance_weights(emb, labels, centers, "sum")
    alpha_feat, v_feat = variance_weights(emb, labels, centers, "feature")
    xy = PCA(n_components=2, random_state=seed).fit_transform(emb.numpy())
    surfaces = [" ".join(records[r]["tokens"][start:end + 1]) for r, _, start, end, _ in entities]
    points = pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "cluster": labels.numpy(),
                           "surface": surfaces, "type": [e[4] for e in entities]})
    alpha = pd.DataFrame({"cluster": range(k), "size": sizes.numpy(), "V_k (sum)": v_sum.numpy(),
                          "alpha (sum, paper)": alpha_sum.numpy(), "V_k (per feature)": v_feat.numpy(),
                          "alpha (per feature, authors' code)": alpha_feat.numpy()})
    contents = {}
    for c in range(k):
        members = points[points.cluster == c]
        contents[c] = {"size": len(members), "types": dict(Counter(members["type"]).most_common()),
                       "top surfaces": [s for s, _ in Counter(members["surface"]).most_common(6)]}
    return {"points": points, "alpha": alpha, "contents": pd.DataFrame(contents).T,
            "clustering": {k_: v for k_, v in chosen.items() if k_ != "labels"}}


# --------------------------------------------------------------------------- figure panels

def _ax(ax=None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.2))
    return ax


def plot_sweep(points: list[dict], x: str, ax=None, y: str = "dev_F1", hue: str | None = None, title: str = "",
               xlabel: str | None = None, percent_x: bool = False, logx: bool = False):
    """One line per ``hue`` value (or one line) of dev F1 (%) against ``x``: a Figure 2/3 panel.

    ``points`` hold one entry per x (and hue) and seed: the line is the seed mean, the band its
    standard deviation, and every seed is drawn as a dot.
    """
    import pandas as pd
    import seaborn as sns

    ax = _ax(ax)
    frame = pd.DataFrame(points)
    frame = frame.assign(**{"dev F1 (%)": 100 * frame[y].astype(float)})
    if percent_x:
        frame[x] = 100 * frame[x]
    sns.lineplot(data=frame, x=x, y="dev F1 (%)", hue=hue, marker="o", ax=ax, errorbar="sd")
    sns.scatterplot(data=frame, x=x, y="dev F1 (%)", hue=hue, ax=ax, s=14, color="black" if hue is None else None,
                    legend=False, alpha=0.6)
    if logx:
        from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sorted(frame[x].unique())))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set(title=title, xlabel=xlabel or x, ylabel="dev F1 (%)")
    return ax


def plot_gazetteer_sizes(rows: list[dict], ax=None, title: str = "(a) gazetteer entries per type"):
    """Figure 3a: entries per type against the share of each gazetteer kept."""
    import pandas as pd
    import seaborn as sns

    ax = _ax(ax)
    frame = pd.DataFrame(rows)
    frame["share (%)"] = (100 * frame["fraction"]).round().astype(int)
    sns.barplot(data=frame, x="share (%)", y="entries", hue="type", ax=ax)
    ax.set(title=title, ylabel="entries", yscale="log")
    return ax


def plot_gazetteer_sweep(points: list[dict], ax=None, title: str = "(b) training sentences and dev F1"):
    """Figure 3b: D_s sentences (bars, left axis) and dev F1 of CoFEE-MRC and Matching (lines, right axis)."""
    import pandas as pd

    ax = _ax(ax)
    frame = pd.DataFrame(points)
    if "row" not in frame:   # one entry per share (results from before seeds were swept)
        frame = pd.concat([frame.assign(row="CoFEE-MRC"),
                           frame.assign(row="Gazetteer Matching", dev_F1=frame["matching_dev_F1"])])
    frame["share"] = (100 * frame["fraction"]).round().astype(int).astype(str) + "%"
    sizes = frame.drop_duplicates("fraction").sort_values("fraction")
    ax.bar(sizes["share"], sizes["d_s_sentences"], color="#cccccc", label="D_s sentences")
    ax.set(ylabel="training sentences (D_s)", xlabel="share of each gazetteer", title=title)
    right = ax.twinx()
    for row, marker, label in (("CoFEE-MRC", "o", "CoFEE-MRC (seed mean, dots: seeds)"), ("Gazetteer Matching", "s", "Matching")):
        part = frame[frame["row"] == row].sort_values("fraction")
        means = part.groupby("share", sort=False)["dev_F1"].mean()
        right.plot(means.index, 100 * means.values, marker=marker, label=label)
        if row == "CoFEE-MRC":
            right.scatter(part["share"], 100 * part["dev_F1"], s=12, color="black", alpha=0.6)
    right.set_ylabel("dev F1 (%)")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    right.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="upper left")
    right.grid(False)
    return ax
