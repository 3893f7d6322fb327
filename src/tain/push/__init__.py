"""Pushing a local directory into a site repository, sending only what the site lacks.

``scan`` turns a directory into entries (hashing through a persistent cache),
``pusher`` plans the changes against the remote head, uploads the missing chunks
(``upload``) and commits them as one revision.
"""
