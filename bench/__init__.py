"""Benchmarks of rujuk against the same PostgreSQL, each figure beside a baseline from the same run.

``python -m bench.dataset`` loads a national-scale synthetic dataset; ``python -m bench.run`` loads it when
needed, starts the servers and writes ``bench/results/``. See ``bench/README.md``.
"""
