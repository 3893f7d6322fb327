"""tain's benchmark suite: tain against rsync, lsyncd, Syncthing and nginx on the same
generated workloads, side by side in one run (``python -m bench``; docs/benchmarks.md).

Modules:

    scale.py      the sizes of a run (full, quick)
    workloads.py  seeded tree generator and the mutations of W3-W6 (pure planning + writing)
    treesum.py    SHA-256 of every file of a tree; comparing a replica with its source
    stats.py      percentiles, medians, ratios (pure)
    measure.py    /usr/bin/time around clients, /proc sampling of daemons, loopback counters
    procs.py      daemon lifecycle: free ports, start, wait, stop (always, with deadlines)
    peers/        one module per tool: how it is configured, started and driven
    latency.py    W6: write a burst, poll the replica, time every file's arrival
    load.py       W7: one large download (curl) and many small ones (wrk)
    cases_*.py    the workloads, each tool in turn
    runner.py     one run: set every tool up, run the cases, tear everything down
    report.py     JSON, the Markdown ratio table; charts.py the PNG
"""
