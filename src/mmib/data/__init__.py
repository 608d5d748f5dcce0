"""Data layer: catalog entries, loaders per layout, preprocessing, processed files."""

from mmib.data.catalog import (
    CATALOG_FILE, LAYOUTS, CatalogEntry, Expect, dataset_entry, parse_entry, read_catalog, read_params,
    resolve_data_root)
from mmib.data.loaders import MultiViewData, check_expect, expected_files, load, load_dataset
from mmib.data.prepare import encode_labels, fit_scaler, prepare, scale_view, validate
from mmib.data.processed import (load_processed, load_scaler, processed_paths, scaler_path, summarize,
                                 write_processed, write_scaler)

__all__ = [
    "CATALOG_FILE", "LAYOUTS", "CatalogEntry", "Expect", "MultiViewData", "check_expect", "dataset_entry",
    "encode_labels", "expected_files", "fit_scaler", "load", "load_dataset", "load_processed", "load_scaler",
    "parse_entry", "prepare", "processed_paths", "read_catalog", "read_params", "resolve_data_root", "scale_view",
    "scaler_path", "summarize", "validate", "write_processed", "write_scaler",
]
