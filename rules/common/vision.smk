# Helpers of the vision line (rules/vision.smk): PASS records, fusion tasks, final targets.

PASS_DIR = f"{RESULTS}/vision/pass"


def pass_cfg():
    return config["vision"]["pass"]


def pass_records():
    p = pass_cfg()
    return [f"{PASS_DIR}/dense.csv"] + [
        f"{PASS_DIR}/{m}-{t}/record.csv" for m in p["methods"] for t in p["flops_targets"]
    ]


if "vision" in config and "pass" in config["vision"]:
    FINAL.append(lambda: [f"{RESULTS}/tables/pass.csv", f"{RESULTS}/figures/pass-accuracy.png", f"{RESULTS}/figures/pass-channels.png"])


FUSION_DIR = f"{RESULTS}/vision/fusion"


def fusion_cfg():
    return config["vision"]["fusion"]


def fusion_tasks():
    return [t["name"] for t in fusion_cfg()["tasks"]]


def fusion_task_spec(name):
    return canon(next(t for t in fusion_cfg()["tasks"] if t["name"] == name))


if "vision" in config and "fusion" in config["vision"]:
    FINAL.append(lambda: [f"{RESULTS}/tables/fusion-{fusion_cfg()['model']}.csv", f"{RESULTS}/figures/fusion-{fusion_cfg()['model']}.png"])
