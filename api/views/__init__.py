"""Views: build each response model from a BlockView (run in worker threads, results cached)."""
