"""tain: keep identical, verified, versioned copies of file trees in many places."""

__version__ = "0.1.0"
