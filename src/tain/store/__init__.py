"""Blob storage behind one interface (see ``base.BlobStore``): local disks, memory."""
