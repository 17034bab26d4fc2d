"""Library side of the review app (apps/report_checker.py): users and sessions, config, and the
pieces the pages render (highlighted report HTML, image views with boxes). The app itself
holds no checking or storage logic."""
