"""The HTTP edge of a tain site: mirror downloads, listings and the API."""
