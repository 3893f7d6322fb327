"""The mirror agent: watches a source directory and pushes every change to a site."""
