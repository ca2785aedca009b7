"""pytest plugin: case files as test items, fixtures (issue 5)."""
