"""The pure core: bytes and values in, values out. No sockets, no files opened here
except where a function is explicitly handed a path to read (chunking a file)."""
