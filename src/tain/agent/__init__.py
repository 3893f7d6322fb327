"""The mirror agent: watches a source directory and pushes every change to a site.

``runner`` runs one ``source.SourceAgent`` per source directory (a thread each) and the
heartbeats. A source agent watches (``watcher``: inotify events → durable marks in the
``journal``), finds what differs without reading unchanged files (``reconcile``: the
stat walk and the catch-up with a site), waits for files to be stable (``debounce``),
sends one revision per ``sync.Cycle`` through the push protocol (reusing ``tain.push``),
and fails over between its sites (``sites``, ``failover``). ``local`` says what a path
is now, ``ignore`` which paths are left alone, ``config`` holds the settings,
``status`` and ``display`` show what is going on.
"""
