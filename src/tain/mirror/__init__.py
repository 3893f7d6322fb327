"""Mirror sites: following an upstream site's revisions, site health, and the redirector."""
