"""Clustering methods: each method's training lives in its own module."""
