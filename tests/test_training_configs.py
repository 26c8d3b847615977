"""Every shipped config is validated: recipes load into typed configs, accelerate configs into
accelerate's own classes, and each file opens with the command that runs it."""
import re
import shlex
from pathlib import Path

import pytest

from training import config as cfg

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "training" / "configs"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if "accelerate" not in p.parts)
ACCELERATE = sorted((CONFIGS / "accelerate").glob("*.yaml"))
SHIPPED = RECIPES + ACCELERATE + sorted((CONFIGS / "slurm").glob("*"))


def _command(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    first = lines[1] if lines[0].startswith("#!") else lines[0]
    assert first.startswith("# "), f"{path} must open with '# <command that runs it>'"
    words = shlex.split(first[2:])
    while re.fullmatch(r"[A-Z_]+=\S+", words[0]):  # leading VAR=value assignments become plain paths
        words = [*words[1:], words[0].split("=", 1)[1]]
    return words


def test_there_are_configs_of_every_kind():
    assert len(RECIPES) >= 4 and len(ACCELERATE) == 3 and (CONFIGS / "slurm" / "pretrain_multinode.sbatch").exists()
    assert (CONFIGS / "slurm" / "contamination_array.sbatch").exists()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_opens_with_a_command_that_names_real_files(path):
    words = _command(path)
    assert words[0] in ("medeval", "accelerate", "sbatch"), words
    rel = str(path.relative_to(ROOT))
    assert rel in words, f"{rel}: the opening command must run this file"
    for ref in re.findall(r"training/configs/[\w/.-]+\w", path.read_text()):
        assert (ROOT / ref).exists(), f"{rel} refers to missing {ref}"
    if "--config" in words:  # the recipe the command runs is valid and of the right kind
        recipe = cfg.load(ROOT / words[words.index("--config") + 1])
        assert type(recipe) is cfg.RECIPES[words[words.index("-m") + 2 if "-m" in words else 1]]


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_recipe_validates(path):
    config = cfg.load(path)
    assert config.lr_scheduler == "cosine" and config.learning_rate == 2e-5  # BioMistral's optimiser everywhere
    assert cfg.load(path, ["max_steps=3"]).max_steps == 3


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_config_loads_in_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(str(path))  # rejects unknown top-level keys
    launch_options = {action.dest for action in launch_command_parser()._actions}
    for key in config.fsdp_config or {}:
        assert key in launch_options, f"{path.name}: unknown FSDP option {key}"
    if config.distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
        assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # checkpoints = model folders
    assert config.mixed_precision == "bf16"


def test_biomistral_defaults():
    pre, sft = cfg.build("pretrain", {}), cfg.build("sft", {})
    assert (pre.block_size, pre.weight_decay, pre.max_grad_norm, pre.warmup_steps) == (2048, 0.01, 1.0, 0)
    assert (pre.per_device_batch_size, pre.grad_accum) == (32, 2)
    assert (sft.lora_r, sft.lora_alpha, sft.lora_dropout, sft.num_epochs) == (16, 16, 0.05, 3.0)
    assert sft.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (sft.per_device_batch_size, sft.grad_accum, sft.learning_rate) == (4, 2, 2e-5)


@pytest.mark.parametrize("text, message", [
    ("recipe: pretrain\nmodel: x\nblock_sise: 10\n", r"line 3, field 'block_sise': unknown field"),
    ("recipe: sft\nlora_r: sixteen\n", r"line 2, field 'lora_r': expected int"),
    ("recipe: sft\nbenchmark: medqa\nlanguage: xx\n", r"line 3, field 'language': expected one of en"),
    ("recipe: train\n", r"field 'recipe': unknown recipe 'train'; valid: pretrain, sft"),
    ("model: x\n", r"line 1, field 'recipe': missing"),
    ("recipe: pretrain\nlr_scheduler: cosin\n", r"line 2, field 'lr_scheduler': expected one of cosine"),
    ("recipe: pretrain\nmodel: [unclosed\n", r"line \d+: not valid YAML"),
])
def test_bad_configs_name_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=r"bad.yaml.*" + message):
        cfg.load(path)


def test_overrides_are_typed():
    config = cfg.build("sft", cfg.parse_overrides(["learning_rate=1e-4", "packing=true", "store=null"]))
    assert config.learning_rate == 1e-4 and config.packing is True and config.store is None
    with pytest.raises(cfg.ConfigError, match="expected bool"):
        cfg.build("sft", cfg.parse_overrides(["packing=maybe"]))


def test_print_config_round_trips(tmp_path, capsys):
    from medtasks.cli import main

    assert main(["pretrain", "--config", str(RECIPES[0]), "--set", "max_steps=7", "--print-config"]) == 0
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert cfg.load(printed) == cfg.load(RECIPES[0], ["max_steps=7"])
    assert main(["sft", "--config", str(RECIPES[0]), "--print-config"]) == 2  # a pretrain file given to sft


@pytest.mark.parametrize("argv, named", [
    (["corpus", "missing.tar.gz", "-o", "{tmp}/c"], "missing.tar.gz"),
    (["corpus", "{tmp}/lonely.tar.gz", "-o", "{tmp}/c"], "lonely.filelist.csv"),
    (["pretrain", "--config", "missing.yaml"], "missing.yaml"),
    (["pretrain", "--set", "corpus={tmp}/nothing", "--set", "model={tmp}"], "nothing"),
    (["sft", "--config", str(CONFIGS / "cpu" / "smoke_pretrain.yaml"), "--print-config"], "smoke_pretrain.yaml"),
    (["sft", "--set", "store={tmp}"], "medqa/en/train"),
    (["sft", "--set", "lora_r=sixteen"], "lora_r"),
    (["merge-adapter", "{tmp}/no_adapter", "-o", "{tmp}/m"], "no_adapter"),
])
def test_training_commands_fail_in_one_line(tmp_path, capsys, argv, named):
    """The error policy: a bad argument or file is one line `medeval <command>: ...`, exit 2, no output left."""
    import tarfile

    from medtasks.cli import main

    with tarfile.open(tmp_path / "lonely.tar.gz", "w:gz"):
        pass
    before = sorted(tmp_path.iterdir())
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"medeval {argv[0]}: ") and "\n" not in err and named in err, err
    assert sorted(tmp_path.iterdir()) == before  # a refused command leaves nothing behind


def test_contamination_array_script_runs_its_shards_and_merges(tmp_path):
    """The SLURM array script, run as each array task would be (bash, SLURM's variables), then the merge
    its header gives: the merged report equals an unsharded scan."""
    import json
    import os
    import subprocess
    import sys

    from test_contamination_units import _corpus_files, _store

    script = CONFIGS / "slurm" / "contamination_array.sbatch"
    text = script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
    count = int(re.search(r"^#SBATCH --array=1-(\d+)$", text, re.M).group(1))
    assert f"--array=1-{count} " in text.splitlines()[1] and f"shard-*-of-{count}.json" in text
    store, files = _store(tmp_path), _corpus_files(tmp_path)[:3]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "TASKS": "medqa_en,pubmedqa_en",
           "OUTPUT": str(tmp_path / "out"), "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_CPUS_PER_TASK": "1"}
    for task in ("1", "2"):
        subprocess.run(["bash", str(script), *map(str, files), "--store", str(store)], check=True, cwd=ROOT,
                       env={**env, "SLURM_ARRAY_TASK_ID": task}, capture_output=True, text=True, timeout=300)
    merge = re.search(r"#\s+(medeval contamination --merge .*)$", text, re.M).group(1).replace(f"-of-{count}", "-of-2")
    merge = merge.replace("out/contamination", str(tmp_path / "out"))
    words = shlex.split(merge)
    shards = sorted(str(p) for p in (tmp_path / "out").glob(Path(words[3]).name))
    done = subprocess.run([*words[:3], *shards, *words[4:]], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr  # contaminated: the verdict exit status
    merged = json.loads((tmp_path / "out" / "report.json").read_text())
    assert merged["corpus"]["shards"] == ["1/2", "2/2"] and len(merged["corpus"]["files"]) == 3
    assert merged["tasks"]["medqa_en"]["contaminated_ids"] == ["q1"]
