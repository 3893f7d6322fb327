"""Pull sources: scheduled jobs that mirror an rsync or HTTP upstream into a repository."""
