"""The adapter workflow end to end, with real parts: a tiny Llama, LoRA adapters trained here with
peft for a few steps, two synthetic tasks evaluated by evalboard from a task directory of the
user's own, and `evalboard compare` deciding what improved, what regressed, and whether it is real.

The two tasks share a vocabulary so that training on one provably hurts the other:
- seq_animals: "Sequence: cat dog cow cat dog\\nNext:" -> " cow" (choices: the right animal, two tools)
- seq_tools: the same with tools, and animals as the distractors.
An adapter trained on seq_animals learns "answer with an animal": seq_animals goes from chance
to ~1, and seq_tools (held out) collapses — catastrophic forgetting, in miniature. A "broken"
adapter trained on wrong answers (tools) regresses seq_animals.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from compare_helpers import compare_cli
from evalboard.records.run_record import RunRecord
from evalboard.records.store import list_runs

ANIMALS = "cat dog cow pig hen fox owl bee ant elk".split()
TOOLS = "saw axe pen cup box key map bag hat pot".split()
N_TEST, N_TRAIN = 80, 64

TASK_YAML = """\
name: {name}
description: "Synthetic: which word continues the repeating sequence ({words})"
type: multiple_choice
hooks: seq_hooks
data:
  split: test
  fewshot_split: test
prompt:
  text: "Sequence: {{{{ sequence }}}}\\nNext:"
num_fewshot: 0
primary_metric: acc
"""

HOOKS = '''\
def to_docs(rows, source_format):
    return [{"id": r["id"], "sequence": r["sequence"], "choices": r["choices"], "answer": r["answer"]}
            for r in rows]
'''


def make_items(task: str, words: list[str], distractors: list[str], n: int, seed: int) -> list[dict]:
    """Items whose answer continues a period-3 pattern of `words`; the wrong choices come from
    `distractors`."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        period = rng.sample(words, 3)
        length = rng.randint(4, 8)
        correct = period[length % 3]
        choices = [correct, *rng.sample(distractors, 2)]
        rng.shuffle(choices)
        items.append({"id": f"{task}-{i:03d}", "sequence": " ".join(period[j % 3] for j in range(length)),
                      "choices": choices, "answer": choices.index(correct)})
    return items


@pytest.fixture(scope="module")
def task_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a task directory for --include-path, a data directory for --data-dir)."""
    root = tmp_path_factory.mktemp("seq-tasks")
    tasks, data = root / "tasks", root / "data"
    tasks.mkdir()
    (tasks / "seq_hooks.py").write_text(HOOKS)
    for seed, (name, words, other) in enumerate([("seq_animals", ANIMALS, TOOLS), ("seq_tools", TOOLS, ANIMALS)]):
        (tasks / f"{name}.yaml").write_text(TASK_YAML.format(name=name, words=name[4:]))
        (data / name).mkdir(parents=True)
        with open(data / name / "test.jsonl", "w") as handle:
            for item in make_items(name, words, other, N_TEST, seed=seed + 1):
                handle.write(json.dumps(item) + "\n")
    return tasks, data


def train_lora(base: Path, out: Path, examples: list[tuple[str, str]], steps: int = 24, lr: float = 1e-2) -> Path:
    """A few steps of plain LoRA fine-tuning on (prompt, answer) pairs, loss on the answer only."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    )
    encoded = []
    for prompt, answer in examples:
        ids = tokenizer.encode(f"{prompt} {answer}")
        encoded.append((ids, len(tokenizer.encode(prompt))))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    batch_size = 16
    for step in range(steps):
        start = (step * batch_size) % len(encoded)
        batch = encoded[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.eos_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, prompt_len) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
            labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good adapter (right answers) and a broken one (wrong answers), trained on seq_animals
    items that are not the test items."""
    train = make_items("train", ANIMALS, TOOLS, N_TRAIN, seed=11)
    prompts = [f"Sequence: {item['sequence']}\nNext:" for item in train]
    good = [(p, item["choices"][item["answer"]]) for p, item in zip(prompts, train)]
    wrong = [(p, item["choices"][(item["answer"] + 1) % 3]) for p, item in zip(prompts, train)]
    return {
        "good": train_lora(tiny_model, tmp_path_factory.mktemp("lora-good"), good),
        "broken": train_lora(tiny_model, tmp_path_factory.mktemp("lora-broken"), wrong),
    }


def _tasks_args(task_dirs: tuple[Path, Path]) -> list[str | Path]:
    tasks, data = task_dirs
    return ["--tasks", "seq_animals,seq_tools", "--include-path", tasks, "--data-dir", data]


def test_one_shot_compare_finds_the_improvement_and_the_forgetting(
    tiny_model, adapters, task_dirs, tmp_path, capsys, monkeypatch
) -> None:
    results, report = tmp_path / "results", tmp_path / "report"
    args = ["--base", f"hf:{tiny_model}", "--candidate", f"hf:{tiny_model},adapter={adapters['good']}",
            *_tasks_args(task_dirs), "--output", results, "--trained-on", "seq_animals",
            "--json", report / "c.json", "--html", report / "c.html", "--markdown", report / "c.md",
            "--fail-on-regression"]
    code, out, err = compare_cli(capsys, monkeypatch, *args)
    assert code == 1, out + err  # the held-out task regressed: the CI gate trips
    assert "regressed significantly" in err and "seq_tools" in err.splitlines()[-1]
    data = json.loads((report / "c.json").read_text())
    animals, tools = (next(t for t in data["tasks"] if t["task"] == name) for name in ("seq_animals", "seq_tools"))
    assert animals["role"] == "trained" and tools["role"] == "held-out"
    assert animals["n"] == tools["n"] == N_TEST and animals["test"] == "mcnemar_exact"
    # chance is 1/3; a few LoRA steps on 64 other items take it near 1
    assert animals["base_score"] < 0.6 and animals["candidate_score"] > 0.9
    assert animals["verdict"] == "improved" and animals["p_adjusted"] < 1e-6 and animals["ci_low"] > 0.2
    assert len(animals["better"]) > 3 * len(animals["worse"])
    assert tools["verdict"] == "regressed" and tools["p_adjusted"] < 1e-3
    assert data["forgetting"] == ["seq_tools"]
    # the lists of changed items are the items whose score really changed, by the runs' own samples
    runs = {r.model.spec: r for r in list_runs(results)}
    base_run, cand_run = runs[f"hf:{tiny_model}"], runs[f"hf:{tiny_model},adapter={adapters['good']}"]

    def scores(run: RunRecord) -> dict[str, float]:
        return {str(s.doc_id): s.scores["acc"] for s in run.load_samples("seq_animals")}

    before, after = scores(base_run), scores(cand_run)
    assert sorted(i["doc_id"] for i in animals["better"]) == sorted(d for d in before if after[d] > before[d])
    assert sorted(i["doc_id"] for i in animals["worse"]) == sorted(d for d in before if after[d] < before[d])
    # every report was written and names the forgetting
    assert "seq_tools regressed" in (report / "c.md").read_text()
    assert 'data-task="seq_tools" data-verdict="regressed"' in (report / "c.html").read_text()

    # The same command again asks the model nothing: every answer comes from the response cache,
    # and the saved runs are the same runs, so they are reused rather than copied.
    code, _, err = compare_cli(capsys, monkeypatch, *args)
    assert code == 1
    reused = re.findall(r"^  run (\S+) reused: (\d+) requests, all from the cache", err, flags=re.MULTILINE)
    assert sorted(r for r, _ in reused) == sorted([base_run.run_id, cand_run.run_id]), err
    assert all(int(asked) > 200 for _, asked in reused)
    assert len(list_runs(results)) == 2
    # a changed label is another run: saved, with its answers still all from the cache
    code, _, err = compare_cli(capsys, monkeypatch, *args, "--base-label", "base")
    counts = re.findall(r"^  run \S+: (\d+) requests, (\d+) from cache$", err, flags=re.MULTILINE)
    assert len(counts) == 1 and counts[0][0] == counts[0][1], err
    assert len(list_runs(results)) == 3


def test_a_broken_adapter_regresses_significantly(tiny_model, adapters, task_dirs, tmp_path, capsys,
                                                  monkeypatch) -> None:
    import evalboard

    results = tmp_path / "results"
    tasks, data = task_dirs
    runs = [
        evalboard.evaluate(spec, ["seq_animals"], include_paths=[tasks], data_dir=data, output_dir=results)
        for spec in (f"hf:{tiny_model}", f"hf:{tiny_model},adapter={adapters['broken']}")
    ]
    code, out, err = compare_cli(capsys, monkeypatch, runs[0].run_id, runs[1].run_id, "--results", results,
                                 "--json", tmp_path / "c.json", "--fail-on-regression=0.1")
    assert code == 1, out + err
    (task,) = json.loads((tmp_path / "c.json").read_text())["tasks"]
    assert task["verdict"] == "regressed" and task["p_adjusted"] < 1e-4
    assert task["candidate_score"] < 0.1 and task["diff"] < -0.2 and task["ci_high"] < 0
    assert len(task["worse"]) > 20 and task["worse"][0]["doc_id"].startswith("seq_animals-")
    assert "▼ regressed" in out


def test_runs_with_other_settings_are_not_paired(tiny_model, task_dirs, tmp_path, capsys, monkeypatch) -> None:
    import evalboard

    results = tmp_path / "results"
    tasks, data = task_dirs
    common = dict(include_paths=[tasks], data_dir=data, output_dir=results)
    base = evalboard.evaluate(f"hf:{tiny_model}", ["seq_animals"], **common)
    fewshot = evalboard.evaluate(f"hf:{tiny_model}", ["seq_animals"], num_fewshot=2, **common)
    limited = evalboard.evaluate(f"hf:{tiny_model}", ["seq_animals"], limit=40, **common)
    chat = evalboard.evaluate(f"hf:{tiny_model}", ["seq_animals"], apply_chat_template=True, **common)
    code, _, err = compare_cli(capsys, monkeypatch, base.run_id, fewshot.run_id, "--results", results)
    assert code == 2 and "not asked the same way" in err and "num_fewshot 0 vs 2" in err
    code, _, err = compare_cli(capsys, monkeypatch, base.run_id, limited.run_id, "--results", results)
    assert code == 2 and "different items (base 80, candidate 40, 40 in common)" in err and "--limit" in err
    code, _, err = compare_cli(capsys, monkeypatch, base.run_id, chat.run_id, "--results", results)
    assert code == 2 and "not asked the same way" in err and "prompt style" in err
