"""Security (issue 4): no pickle is ever loaded, remote code runs only on opt-in.

- a static check over the package and the scripts: no pickle/joblib/dill loads,
  no torch.load without weights_only=True, no numpy allow_pickle=True, no
  hard-coded trust_remote_code=True;
- a malicious pickle in a model directory is not executed (alone: the load is
  refused; next to safetensors weights: ignored);
- a model directory asking for its own Python code (auto_map) does not get it
  run unless the config opts in per model (trust_remote_code defaults to false).
"""

import ast
import json
import os
import pickle
from pathlib import Path

import pytest
import yaml

from compbench import models, variants
from conftest import ROOT, save_tiny_llama

CODE = sorted((ROOT / "workflow").rglob("*.py")) + sorted((ROOT / "rules").glob("*.smk")) + [ROOT / "Snakefile"]
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}


def _name(node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def _kw(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"import {m}" for m in mods if m.split(".")[0] in PICKLE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        fn = _name(node.func)
        head, _, tail = fn.rpartition(".")
        if tail in ("load", "loads", "Unpickler") and head.split(".")[-1] in PICKLE_MODULES:
            found.append(fn)
        if fn in ("pd.read_pickle", "pandas.read_pickle"):
            found.append(fn)
        if fn == "torch.load":
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append("torch.load without weights_only=True")
        if tail in ("get_state_dict", "load_state_dict_from_url", "load_url") or fn == "torch.hub.load":  # torch.hub unpickles
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append(f"{fn} without weights_only=True")
        if tail == "get_model" and _kw(node, "weights") is not None:  # torchvision: hub loader, weights_only=False
            found.append(f"{fn}(weights=...)")
        if tail == "load" and head in ("np", "numpy"):
            ap = _kw(node, "allow_pickle")
            if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                found.append("numpy.load(allow_pickle=...)")
        trc = _kw(node, "trust_remote_code")
        if isinstance(trc, ast.Constant) and trc.value is True:
            found.append(f"{fn}(trust_remote_code=True)")
    return found


def test_the_checker_catches_what_it_should():
    bad = "import pickle\npickle.load(f)\ntorch.load(p)\nnp.load(p, allow_pickle=True)\nm.from_pretrained(p, trust_remote_code=True)\n"
    bad += "w.get_state_dict(progress=True)\ntvm.get_model('resnet18', weights='IMAGENET1K_V1')\n"
    assert len(unsafe_calls(bad)) == 7
    ok = "torch.load(p, weights_only=True)\nw.get_state_dict(progress=True, weights_only=True)\nnp.load(p)\nm.from_pretrained(p, trust_remote_code=spec.get('trust_remote_code', False))\n"
    assert unsafe_calls(ok) == []


@pytest.mark.parametrize("path", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_no_pickle_loads_and_no_hardcoded_remote_code(path):
    source = path.read_text()
    if path.suffix != ".py":  # Snakemake files: check only the plain-Python text patterns
        assert not any(s in source for s in ("pickle.load", "torch.load(", "trust_remote_code=True")), path
        return
    assert unsafe_calls(source) == [], path


class Payload:
    """Unpickling this runs code: it creates the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def tiny_model_dir(path: Path) -> Path:
    """A one-block tiny model (the workflow's tiny config: width 16, vocabulary 64) saved at path."""
    return save_tiny_llama(path, vocab=64, hidden=16, inter=32, layers=1, heads=2, positions=16, seed=None, rms_eps=1e-5)


def plant_pickle(model_dir: Path, sentinel: Path) -> None:
    with open(model_dir / "pytorch_model.bin", "wb") as f:
        pickle.dump({"model.embed_tokens.weight": Payload(sentinel)}, f)
    # The attack works when something unpickles it (what compbench never does):
    assert not sentinel.exists()


def test_malicious_pickle_alone_is_refused_not_executed(tmp_path):
    d = tiny_model_dir(tmp_path / "m")
    (d / "model.safetensors").unlink()
    sentinel = tmp_path / "pwned"
    plant_pickle(d, sentinel)
    with pytest.raises(FileNotFoundError, match="no safetensors"):
        models.load(d)
    with pytest.raises(FileNotFoundError, match="no safetensors"):
        variants.load(d)
    assert not sentinel.exists()


def test_malicious_pickle_next_to_safetensors_is_ignored(tmp_path):
    d = tiny_model_dir(tmp_path / "m")
    sentinel = tmp_path / "pwned"
    plant_pickle(d, sentinel)
    model = models.load(d)
    assert model.config.num_hidden_layers == 1
    variants.load(d)
    assert not sentinel.exists()


def test_remote_code_is_not_run_without_opt_in(tmp_path):
    d = tiny_model_dir(tmp_path / "m")
    sentinel = tmp_path / "pwned-by-code"
    (d / "evil_model.py").write_text(
        f"open({str(sentinel)!r}, 'w').write('ran')\nfrom transformers import LlamaForCausalLM as EvilForCausalLM\n"
    )
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "evil_model.EvilForCausalLM"}
    (d / "config.json").write_text(json.dumps(cfg))
    try:
        models.load(d)  # trust_remote_code defaults to False
    except Exception:
        pass  # refusing is fine; running the code is not
    assert not sentinel.exists()


def test_trust_remote_code_is_off_unless_the_config_opts_in_per_model():
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["models"]["other"] = {"source": "hf", "id": "org/model", "size": "tiny", "trust_remote_code": True}
    validate(cfg, str(ROOT / "config" / "schema.yaml"), set_default=True)
    assert cfg["models"]["tiny"]["trust_remote_code"] is False
    assert cfg["models"]["other"]["trust_remote_code"] is True
