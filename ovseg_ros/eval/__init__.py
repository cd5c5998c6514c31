"""Benchmark evaluation (`ovseg eval`): dataset readers, the paper's protocol, class lists,
confusion-matrix metrics, resumable runs, reports, and synthetic datasets for tests."""
