"""Views: build each response model from a Snapshot (run in worker threads, results cached)."""
