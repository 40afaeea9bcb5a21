"""Reliability scenarios: the store's guarantees under concurrency, crashes and damage."""
