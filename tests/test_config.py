"""params.yaml validation (``mmib.config``): a bad entry names the file and the dotted field.

The dataset catalog is data/catalog.yaml beside params.yaml, not a param."""

from __future__ import annotations

import copy

import pytest
import yaml

from mmib.config import REPO_ROOT, Params, default_params, load_params, parse_params
from mmib.errors import InputError
from shipped_params import shipped_params, write_workspace_params


@pytest.fixture(scope="module")
def raw() -> dict:
    return shipped_params()


def edited(raw: dict, dotted: str, value=None, *, delete: bool = False) -> dict:
    out = copy.deepcopy(raw)
    *path, last = dotted.split(".")
    node = out
    for key in path:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return out


def test_repository_params_load():
    p = parse_params(shipped_params())
    assert isinstance(p, Params)
    assert p.method == "clib"
    assert p.calibrate.screening in ("s1", "s2", "s3", "maxprob")
    assert p.warmup.epochs >= 0 and p.calibrate.epochs >= 0
    assert 0 < p.warmup.mine_ema_rate < 1
    assert set(p.datasets) <= set(p.catalog)
    assert default_params() == p


def test_params_are_frozen():
    p = default_params()
    with pytest.raises(Exception):
        p.alpha = 0.9  # type: ignore[misc]


@pytest.mark.parametrize("dotted, value, hint", [
    ("warmup.epochs", -1, ">= 0"),
    ("alpha", -0.5, ">= 0"),
    ("beta", -1.0, ">= 0"),
    ("calibrate.epochs", -3, ">= 0"),
    ("warmup.batch_size", 1, ">= 2"),
    ("warmup.lr", 0.0, "> 0"),
    ("warmup.mine_ema_rate", 1.0, "mine_ema_rate"),
    ("model.latent_dim", 0, "> 0"),
    ("calibrate.screening", "s4", "s1"),
    ("calibrate.losses.caliH", "maybe", "caliH"),
    ("device", "tpu", "auto"),
])
def test_bad_value_names_file_and_field(raw, dotted, value, hint):
    with pytest.raises(InputError) as exc:
        parse_params(edited(raw, dotted, value))
    msg = str(exc.value)
    assert "params.yaml" in msg
    assert f"'{dotted}'" in msg
    assert exc.value.field == dotted
    assert hint in exc.value.fix


@pytest.mark.parametrize("dotted", ["warmup.epoch", "calibrate.losses.entropy", "gamma"])
def test_unknown_key_names_file_and_field(raw, dotted):
    with pytest.raises(InputError) as exc:
        parse_params(edited(raw, dotted, 3))
    msg = str(exc.value)
    assert "params.yaml" in msg and f"'{dotted}'" in msg
    assert exc.value.field == dotted
    assert "remove" in exc.value.fix


@pytest.mark.parametrize("dotted", ["model", "calibrate", "warmup.temperature", "calibrate.losses"])
def test_missing_section_or_field(raw, dotted):
    with pytest.raises(InputError) as exc:
        parse_params(edited(raw, dotted, delete=True))
    msg = str(exc.value)
    assert "params.yaml" in msg and f"'{dotted}'" in msg
    assert exc.value.field == dotted
    assert "add" in exc.value.fix


def test_load_params_names_the_file_it_read(raw, tmp_path):
    path = tmp_path / "exp" / "params.yaml"
    path.parent.mkdir()
    write_workspace_params(path, edited(raw, "warmup.epochs", -1))
    with pytest.raises(InputError) as exc:
        load_params(path)
    assert exc.value.file == str(path)
    assert str(path) in str(exc.value) and "'warmup.epochs'" in str(exc.value)


def test_load_params_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("text, match", [("alpha: [1, 2\n", "not valid YAML"),
                                         ("- just\n- a list\n", "mapping"),
                                         ("", "mapping")])
def test_load_params_unreadable_yaml(tmp_path, text, match):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_params(path)
    assert "params.yaml" in str(exc.value)


# ---------------------------------------------------------------- the catalog is a file, not params
def test_the_catalog_is_not_a_param_of_the_repository():
    """params.yaml holds no catalog (DVC would track 100+ catalog.* params); data/catalog.yaml does."""
    assert "catalog" not in yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    catalog = yaml.safe_load((REPO_ROOT / "data" / "catalog.yaml").read_text())
    assert set(catalog) == {"catalog"} and "mfeat" in catalog["catalog"]


def test_load_params_reads_the_catalog_beside_it(raw, tmp_path):
    path = write_workspace_params(tmp_path / "params.yaml", raw)
    p = load_params(path)
    assert p.catalog == raw["catalog"]
    assert parse_params({k: v for k, v in raw.items() if k != "catalog"}) == p  # default: the shipped catalog


def test_a_catalog_in_params_yaml_is_refused_with_the_move(raw, tmp_path):
    path = write_workspace_params(tmp_path / "params.yaml", raw)
    path.write_text(yaml.safe_dump(raw))  # the catalog back in params.yaml, as before
    with pytest.raises(InputError) as exc:
        load_params(path)
    assert exc.value.file == str(path) and exc.value.field == "catalog"
    assert "data/catalog.yaml" in exc.value.fix


def test_a_bad_catalog_entry_names_the_catalog_file(raw, tmp_path):
    path = write_workspace_params(tmp_path / "params.yaml", edited(raw, "catalog.mfeat.layout", "uci"))
    with pytest.raises(InputError) as exc:
        load_params(path)
    assert exc.value.file == str(tmp_path / "data" / "catalog.yaml")
    assert exc.value.field == "catalog.mfeat.layout"


@pytest.mark.parametrize("text, match", [(None, "not found"), ("catalog: [x\n", "not valid YAML"),
                                         ("mfeat: {}\n", "top-level `catalog:`"),
                                         ("catalog: {}\n", "top-level `catalog:`"),
                                         ("catalog: {mfeat: {}}\nalpha: 1\n", "unexpected top-level")])
def test_an_unreadable_catalog_names_its_file(raw, tmp_path, text, match):
    path = write_workspace_params(tmp_path / "params.yaml", raw)
    catalog = tmp_path / "data" / "catalog.yaml"
    catalog.unlink() if text is None else catalog.write_text(text)
    with pytest.raises(InputError, match=match) as exc:
        load_params(path)
    assert exc.value.file == str(catalog)


def test_the_raw_reader_of_scripts_brings_the_catalog_along(raw, tmp_path):
    """mmib.data.read_params (benchmarks, scripts): params.yaml's dict with the catalog beside it."""
    from mmib.data import read_params

    path = write_workspace_params(tmp_path / "params.yaml", raw)
    assert read_params(path) == raw
    path.write_text(yaml.safe_dump(raw))  # a catalog left in params.yaml
    with pytest.raises(InputError, match="not a param"):
        read_params(path)
