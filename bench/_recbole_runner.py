"""Train and test one RecBole 1.2.1 model on a fixed split; run inside ``.venv-recbole`` by ``bench/vs_recbole.py``.

    .venv-recbole/bin/python bench/_recbole_runner.py DATA_DIR MODEL '{"epochs": 400, ...}'

``DATA_DIR/ml-100k/`` holds the atomic files ``ml-100k.{train,valid,test}.inter``
(``user_id:token  item_id:token``), read through RecBole's ``benchmark_filename`` so RecBole uses that
split as given (no filtering, no re-splitting). The pipeline is RecBole's own quick start
(``run_recbole``) without the parts that import ray, log system facts or count FLOPs: config →
dataset → data_preparation → model → trainer.fit → trainer.evaluate(best checkpoint).

Prints one JSON object on the last line of stdout: test and best-validation metrics, the wall
seconds of every training epoch (``_train_epoch``: negative sampling and optimisation steps) and of
every validation pass, the epochs run and the best epoch. With ``"timing_only": true`` among the
settings it trains ``epochs`` epochs without validation, checkpoints or test, for timing.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread for every math library, before torch: the same prelude as the benchmarks)

import json
import os
import sys
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole reloads its checkpoint with torch.load


def run(data_dir: str, model_name: str, overrides: dict) -> dict:
    timing_only = bool(overrides.pop("timing_only", False))
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(1)
    settings = {
        "data_path": data_dir,
        "checkpoint_dir": os.path.join(data_dir, "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "use_gpu": False,
        "seed": 0,
        "reproducibility": True,
        "show_progress": False,
        "state": "WARNING",
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "metric_decimal_place": 6,
        "eval_args": {"mode": "full", "order": "RO", "group_by": "user", "split": {"RS": [0.8, 0.1, 0.1]}},
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "embedding_size": 64,
        "learning_rate": 1e-3,
        "epochs": 400,
        "eval_step": 1,
        "stopping_step": 10,
    } | overrides
    if timing_only:
        settings["eval_step"] = 0  # never validate
    config = Config(model=model_name, dataset="ml-100k", config_dict=settings)
    config["data_path"] = os.path.join(data_dir, "ml-100k")  # Config points "ml-100k" at its bundled copy
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    train_seconds: list[float] = []
    valid_seconds: list[float] = []
    valid_scores: list[float] = []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        out = train_epoch(*args, **kwargs)
        train_seconds.append(time.perf_counter() - start)
        return out

    def timed_valid(*args, **kwargs):
        start = time.perf_counter()
        score, result = valid_epoch(*args, **kwargs)
        valid_seconds.append(time.perf_counter() - start)
        valid_scores.append(float(score))
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid
    start = time.perf_counter()
    best_score, best_valid = trainer.fit(train_data, None if timing_only else valid_data, saved=not timing_only,
                                         show_progress=False, verbose=False)
    fit_seconds = time.perf_counter() - start
    test = {} if timing_only else trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    best_check = max(range(len(valid_scores)), key=valid_scores.__getitem__) if valid_scores else -1
    return {
        "model": model_name,
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "rows": [int(d._dataset.inter_num) for d in (train_data, valid_data, test_data)],
        "test": {k.lower().replace("@", "_at_"): float(v) for k, v in test.items()},
        "valid": {k.lower().replace("@", "_at_"): float(v) for k, v in (best_valid or {}).items()},
        "best_valid_score": float(best_score),
        "epochs": len(train_seconds),
        "best_epoch": (best_check + 1) * int(config["eval_step"]) if valid_scores else -1,
        "train_seconds": train_seconds,
        "valid_seconds": valid_seconds,
        "valid_scores": valid_scores,
        "fit_seconds": fit_seconds,
        "threads": torch.get_num_threads(),
        "config": {k: config[k] for k in ("embedding_size", "learning_rate", "train_batch_size", "epochs", "eval_step",
                                          "stopping_step", "n_layers", "reg_weight") if k in config},
    }


if __name__ == "__main__":
    data_dir, model_name = sys.argv[1], sys.argv[2]
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    os.chdir(data_dir)  # RecBole writes log_tensorboard/ into the working directory
    print(json.dumps(run(data_dir, model_name, overrides)))
