"""Benchmarks of the CoFEE kit against its peers and the machine's own limits.

One script per benchmark (``bench_train.py``, ``bench_kmeans.py``,
``bench_anchors.py``, ``bench_match.py``, ``bench_predict.py``); each runs the
kit and a reference on the same input in the same run and reports the ratio.
``run_all.py`` runs them all and writes ``results/bench.json``; ``cofee bench``
and ``make bench`` call it. See ``bench/README.md``.
"""
