"""The service's benchmark: ``python -m bench.run`` (the module's docstring explains it).

Imports flow down this list, never up:

- `bench.run`: the command line and the order of the phases;
- `bench.report`: the table, the JSON line and the ``--profile`` figures;
- `bench.load`: requests sent through the local hub, and what one batch measured;
- `bench.consumers`: the consumer processes under test, started and stopped;
- `bench.proc`: CPU time and memory of a process, from ``/proc``;
- `bench.stats`: percentiles, medians and ratios;
- `bench.common`: paths, the Echo workload, `BenchError`, progress notes.

Beside them: `bench.bare_consumer` (the baseline), `bench.profiled_consumer` (the framework
under cProfile) and `bench.inprocess` (framework and bare loop in one process, no sockets).
`bench.catalog_switch` and `bench.deploys` (what callers see while replicas are replaced)
start, probe and stop their replicas with `bench.replicas`.
"""
