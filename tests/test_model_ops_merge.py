"""model_ops merges on tiny random Mistral checkpoints (5 layers, so BioMistral's 5-point t lists
land exactly on layers): SLERP endpoints and schedule, TIES/DARE density and signs, seeding,
compatibility refusals, cards and the CLI."""
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("mergekit", reason="merging needs mergekit: pip install 'medeval[merge]'")
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from medtasks.common import model_content_hash  # noqa: E402
from model_ops.card import read_card  # noqa: E402
from model_ops.compat import IncompatibleModels, check_compatible  # noqa: E402
from model_ops.merge import merge, referenced_models  # noqa: E402
from model_ops.presets import PRESETS, build_config, get_preset  # noqa: E402

LAYERS = 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from tiny import build_tiny_model

    root = tmp_path_factory.mktemp("merge_inputs")
    return (build_tiny_model(root / "base", "mistral", seed=0, layers=LAYERS),
            build_tiny_model(root / "domain", "mistral", seed=1, layers=LAYERS))


def weights(model_dir):
    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def run(pair, tmp_path, preset, name, seed=0, **params):
    config = build_config(preset, str(pair[0]), str(pair[1]), dtype="float32", **params)
    return weights(merge(config, tmp_path / name, seed=seed, preset=preset, quiet=True))


def ref_slerp(t, a, b, eps=1e-8):
    """Textbook SLERP over the flattened tensor, linear when nearly parallel."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    cos = torch.dot(a64 / a64.norm().clamp_min(eps), b64 / b64.norm().clamp_min(eps)).clamp(-1, 1)
    if cos.abs() > 0.9995:
        return ((1 - t) * a64 + t * b64).reshape(a.shape).float()
    theta = torch.acos(cos)
    out = (torch.sin((1 - t) * theta) * a64 + torch.sin(t * theta) * b64) / torch.sin(theta)
    return out.reshape(a.shape).float()


def test_slerp_endpoints_give_each_input_exactly(pair, tmp_path):
    base, domain = weights(pair[0]), weights(pair[1])
    at0 = run(pair, tmp_path, "slerp", "t0", t=0)
    at1 = run(pair, tmp_path, "slerp", "t1", t=1)
    assert at0.keys() == base.keys()
    for name in base:
        assert torch.equal(at0[name], base[name]), name
        assert torch.equal(at1[name], domain[name]), name


def test_slerp_biomistral_schedule_per_layer(pair, tmp_path):
    base, domain = weights(pair[0]), weights(pair[1])
    merged = run(pair, tmp_path, "slerp", "sched")
    attn_t, mlp_t = [0, 0.5, 0.3, 0.7, 1], [1, 0.5, 0.7, 0.3, 0]
    for layer in range(LAYERS):
        for module, ts in (("self_attn.q_proj", attn_t), ("mlp.down_proj", mlp_t)):
            name = f"model.layers.{layer}.{module}.weight"
            expected = ref_slerp(ts[layer], base[name], domain[name])
            assert torch.allclose(merged[name], expected, atol=1e-5), (name, ts[layer])
    # exact endpoints of the schedule: first attention is the base, last attention the domain model
    assert torch.equal(merged["model.layers.0.self_attn.k_proj.weight"], base["model.layers.0.self_attn.k_proj.weight"])
    assert torch.equal(merged["model.layers.4.self_attn.k_proj.weight"], domain["model.layers.4.self_attn.k_proj.weight"])
    # everything else half-way
    name = "model.embed_tokens.weight"
    assert torch.allclose(merged[name], ref_slerp(0.5, base[name], domain[name]), atol=1e-5)


def _proj_names(tensors):
    return [n for n in tensors if n.startswith("model.layers.") and n.endswith("proj.weight")]


def test_ties_keeps_top_density_fraction_with_signs_of_the_model(pair, tmp_path):
    base, domain = weights(pair[0]), weights(pair[1])
    merged = run(pair, tmp_path, "ties", "ties", density=0.3, weight=1.0)
    for name in _proj_names(base):
        delta, out = domain[name] - base[name], merged[name] - base[name]
        kept = out != 0
        assert kept.float().mean().item() == pytest.approx(0.3, abs=2 / delta.numel() + 1e-3), name
        # kept entries are the model's own delta (one model: sign election agrees, normalize divides by 1)
        assert torch.allclose(out[kept], delta[kept], atol=1e-6), name
        # and they are the largest by magnitude
        assert delta[kept].abs().min() >= delta[~kept].abs().max() - 1e-7, name


def test_dare_drops_at_random_rescales_and_keeps_signs(pair, tmp_path):
    base, domain = weights(pair[0]), weights(pair[1])
    merged = run(pair, tmp_path, "dare", "dare", density=0.5, weight=1.0)
    fractions = []
    for name in _proj_names(base):
        delta, out = domain[name] - base[name], merged[name] - base[name]
        kept = out != 0
        fractions.append(kept.float().mean().item())
        assert torch.all(torch.sign(out[kept]) == torch.sign(delta[kept])), name
        # the survivors are rescaled up (1/density in expectation), never shrunk or flipped
        assert (out[kept] / delta[kept]).median().item() == pytest.approx(2.0, rel=0.15), name
    assert sum(fractions) / len(fractions) == pytest.approx(0.5, abs=0.05)
    # a random drop, not a magnitude cut: some dropped entries are larger than some kept ones
    name = _proj_names(base)[0]
    delta, kept = (domain[name] - base[name]), (merged[name] - base[name]) != 0
    assert delta[~kept].abs().max() > delta[kept].abs().min()


def test_sign_election_between_two_models(pair, tmp_path):
    from tiny import build_tiny_model

    third = build_tiny_model(tmp_path / "third", "mistral", seed=2, layers=LAYERS)
    config = {"merge_method": "ties", "base_model": str(pair[0]), "dtype": "float32",
              "models": [{"model": str(pair[0])},
                         {"model": str(pair[1]), "parameters": {"density": 1.0, "weight": 1.0}},
                         {"model": str(third), "parameters": {"density": 1.0, "weight": 1.0}}],
              "parameters": {"normalize": True}}
    merged = weights(merge(config, tmp_path / "three", quiet=True))
    base, d1, d2 = weights(pair[0]), weights(pair[1]), weights(third)
    for name in _proj_names(base):
        a, b = d1[name] - base[name], d2[name] - base[name]
        elected = torch.sign(a + b)
        out = merged[name] - base[name]
        agree_a, agree_b = torch.sign(a) == elected, torch.sign(b) == elected
        # entries whose sign disagrees with the elected one are dropped; normalize averages the rest
        expected = (a * agree_a + b * agree_b) / (agree_a.float() + agree_b.float()).clamp_min(1)
        assert torch.allclose(out, expected, atol=1e-5), name


def test_same_seed_gives_byte_identical_output(pair, tmp_path):
    outs = []
    for name, seed in (("s0a", 0), ("s0b", 0), ("s1", 1)):
        config = build_config("dare", str(pair[0]), str(pair[1]), dtype="float32")
        outs.append(merge(config, tmp_path / name, seed=seed, quiet=True))
    files = sorted(p.name for p in outs[0].iterdir())
    assert files == sorted(p.name for p in outs[1].iterdir())
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    assert (outs[0] / "model.safetensors").read_bytes() != (outs[2] / "model.safetensors").read_bytes()
    assert read_card(outs[0])["seed"] == 0 and read_card(outs[2])["seed"] == 1


def test_card_records_method_inputs_seed_tools_and_paper(pair, tmp_path):
    out = tmp_path / "carded"
    merge(build_config("ties", str(pair[0]), str(pair[1]), dtype="float32"), out, seed=7, preset="ties", quiet=True)
    card = read_card(out)
    assert card["kind"] == "merge" and card["method"] == "ties" and card["seed"] == 7
    assert card["parameters"]["preset"] == "ties"
    assert card["parameters"]["config"]["models"][1]["parameters"] == {"density": 0.5, "weight": 0.5}
    assert [i["model"] for i in card["inputs"]] == [str(pair[0]), str(pair[1])]
    assert [i["sha256"] for i in card["inputs"]] == [model_content_hash(str(p)) for p in pair]
    assert card["inputs"][0]["sha256"] != card["inputs"][1]["sha256"]
    assert "mergekit" in card["tools"] and "torch" in card["tools"]
    assert "2306.01708" in card["reference"]
    readme = (out / "README.md").read_text()
    assert "ties" in readme and card["inputs"][0]["sha256"] in readme
    for f in ("config.json", "tokenizer.json", "model.safetensors", "mergekit_config.yml"):
        assert (out / f).is_file(), f


def test_vocabulary_mismatch_is_refused(pair, tmp_path):
    other = tmp_path / "swapped"
    shutil.copytree(pair[1], other)
    tok = json.loads((other / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    a, b = list(vocab)[10], list(vocab)[11]
    vocab[a], vocab[b] = vocab[b], vocab[a]  # same size and shapes, ids now mean other strings
    (other / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(IncompatibleModels, match="vocabularies differ.*2 tokens with a different id"):
        merge(build_config("slerp", str(pair[0]), str(other)), tmp_path / "never")
    assert not (tmp_path / "never").exists()  # refused before any work


def test_shape_and_architecture_mismatch_are_refused(pair, tmp_path):
    from tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "wide", "mistral", seed=0, hidden=48, layers=LAYERS)
    llama = build_tiny_model(tmp_path / "llama", "llama", seed=0, layers=LAYERS)
    with pytest.raises(IncompatibleModels, match=r"tensor shapes differ.*lm_head.weight \(400, 32\) vs \(400, 48\)"):
        check_compatible([pair[0], wide])
    with pytest.raises(IncompatibleModels, match="architecture differs.*MistralForCausalLM vs LlamaForCausalLM"):
        check_compatible([pair[0], llama])


def test_preset_registry():
    assert set(PRESETS) == {"slerp", "ties", "dare"}
    with pytest.raises(KeyError, match="valid presets: dare, slerp, ties"):
        get_preset("frankenmerge")
    dare = build_config("dare", "b", "m")
    assert dare["merge_method"] == "dare_ties" and dare["parameters"]["int8_mask"] is True
    assert dare["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="bad parameter"):
        build_config("slerp", "b", "m", density=0.5)


def test_cli_user_yaml_and_refusal(pair, tmp_path, capsys):
    from medtasks.cli import main

    yaml_file = tmp_path / "linear.yml"
    yaml_file.write_text(f"merge_method: linear\ndtype: float32\nmodels:\n"
                         f"  - model: {pair[0]}\n    parameters: {{weight: 0.25}}\n"
                         f"  - model: {pair[1]}\n    parameters: {{weight: 0.75}}\n")
    assert main(["merge", "--config", str(yaml_file), "--out", str(tmp_path / "lin")]) == 0
    base, domain, out = weights(pair[0]), weights(pair[1]), weights(tmp_path / "lin")
    name = "model.layers.2.mlp.up_proj.weight"
    assert torch.allclose(out[name], 0.25 * base[name] + 0.75 * domain[name], atol=1e-6)
    assert (tmp_path / "lin" / "mergekit_config.yml").read_text().startswith("merge_method: linear")

    from tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "wide", "mistral", seed=0, hidden=48, layers=LAYERS)
    capsys.readouterr()
    code = main(["merge", "--preset", "ties", "--base", str(pair[0]), "--model", str(wide),
                 "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("medeval merge: models cannot be merged: tensor shapes differ")
    assert err.count("\n") == 1 and not (tmp_path / "bad").exists()
    # a bad configuration or argument: one line, exit 2
    (tmp_path / "bad.yml").write_text("merge_method: [linear\n")
    assert main(["merge", "--config", str(tmp_path / "bad.yml"), "--out", str(tmp_path / "x")]) == 2
    assert main(["merge", "--preset", "ties", "--base", str(pair[0]), "--model", str(pair[1]),
                 "--param", "t=0.5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("medeval merge: ") and "bad.yml: not valid YAML" in err[0]
    assert err[1].startswith("medeval merge: preset 'ties': bad parameter") and len(err) == 2
    assert not (tmp_path / "x").exists()


@pytest.fixture
def no_weight_is_read(monkeypatch):
    """Every way a refused merge could load weights or start mergekit fails the test."""
    import safetensors
    import safetensors.torch
    from transformers import AutoModelForCausalLM

    import model_ops.merge

    def never(*_args, **_kwargs):
        raise AssertionError("a refused merge read weights or started mergekit")

    real_require = model_ops.merge.require
    monkeypatch.setattr(model_ops.merge, "require",
                        lambda module, *a: never() if module == "mergekit" else real_require(module, *a))
    for owner, name in ((safetensors.torch, "load_file"), (safetensors, "safe_open"),
                        (AutoModelForCausalLM, "from_pretrained"), (torch, "load")):
        monkeypatch.setattr(owner, name, never)


def test_refusals_come_from_headers_before_any_weight_or_mergekit(pair, tmp_path, no_weight_is_read):
    from tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "wide", "mistral", seed=0, hidden=48, layers=LAYERS)
    llama = build_tiny_model(tmp_path / "llama", "llama", seed=0, layers=LAYERS)
    swapped = tmp_path / "swapped"
    shutil.copytree(pair[1], swapped)
    tok = json.loads((swapped / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    a, b = list(vocab)[10], list(vocab)[11]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    (swapped / "tokenizer.json").write_text(json.dumps(tok))
    for other, reason in ((wide, "tensor shapes differ"), (llama, "architecture differs"),
                          (swapped, "vocabularies differ")):
        for preset in ("slerp", "dare"):
            with pytest.raises(IncompatibleModels, match=reason):
                merge(build_config(preset, str(pair[0]), str(other)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refusal_does_not_import_mergekit_or_torch(pair, tmp_path):
    """In a fresh process, as a user runs it: the refusal is decided without importing either."""
    import subprocess
    import sys

    from tiny import build_tiny_model

    llama = build_tiny_model(tmp_path / "llama", "llama", seed=0, layers=LAYERS)
    code = ("import sys; from medtasks.cli import main; "
            f"rc = main(['merge', '--preset', 'ties', '--base', {str(pair[0])!r}, '--model', {str(llama)!r}, "
            f"'--out', {str(tmp_path / 'out')!r}]); "
            "print(rc, 'mergekit' in sys.modules, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr[-2000:]
    assert "architecture differs" in proc.stderr and not (tmp_path / "out").exists()


def test_failed_merge_leaves_no_folder(pair, tmp_path, monkeypatch):
    import mergekit.merge

    def crash(config, out_path, options, **_kwargs):
        (Path(out_path) / "model-00001-of-00002.safetensors").write_bytes(b"half")
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(mergekit.merge, "run_merge", crash)
    with pytest.raises(RuntimeError, match="killed half-way"):
        merge(build_config("ties", str(pair[0]), str(pair[1])), tmp_path / "deep" / "out")
    assert list(tmp_path.iterdir()) == []


def test_referenced_models_without_mergekit():
    config = {"merge_method": "ties", "base_model": "org/base@abc",
              "models": [{"model": "./domain+./lora", "parameters": {"weight": 0.5}},
                         {"model": {"model": {"path": "org/other", "revision": "r1"}}},
                         {"model": "org/base@abc"}],
              "slices": [{"sources": [{"model": "./sliced", "layer_range": [0, 4]}]}]}
    assert referenced_models(config) == ["org/base@abc", "./domain", "org/other@r1", "./sliced"]
