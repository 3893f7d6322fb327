"""Site operations over the catalog and the store: push, rollback, gc, publish, auth.
Used by the server's routes (and by local commands); no HTTP here."""
